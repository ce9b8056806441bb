"""The application on top of the library: the `tfdistill` command, run configs and folders, reports, the demo.

| module | what it holds |
| --- | --- |
| `cli.py` | the `tfdistill` command |
| `config.py` | run configs and `DEFAULTS`, the one source of the application's defaults |
| `runs.py` | a run described by a config, written to its own folder |
| `teacher_cache.py` | `tfdistill cache`: a config's teacher pass on Apache Beam, and runs reading its cache |
| `demo.py` | the main job: distil the Fashion-MNIST teacher, compare, export |
| `training.py` | training the Fashion-MNIST teacher and students (shared by the demo, runs and benchmarks) |
| `models.py` | the Fashion-MNIST teacher and students |
| `reports.py` | Markdown reports and their plots |

Nothing in the library (`tfdistill.*` outside this package) imports it.
"""
