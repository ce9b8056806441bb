"""The application on top of the library: the `tfdistill` command, run configs and folders, reports, the demo.

A run's config goes down once, a module per stage:

| module | what it holds |
| --- | --- |
| `cli.py` | the `tfdistill` command's arguments; `commands.py` runs those that are not runs |
| `config.py` | run configs: `DEFAULTS` and `HELP`, the one source of the keys, defaults and meanings |
| `sections.py` | a resolved config as typed, frozen sections (`RunConfig`) and their checks |
| `inputs.py` | the teacher, the data and the students' initial weights, loaded and checked before any work |
| `model_sources.py` | teachers and students from files or code, and the checks on them and the data |
| `data_sources.py` | a run's `Data`: the labeled data split, with its unlabeled examples |
| `data_forms.py`, `unlabeled.py`, `datasets.py` | reading each data form; the unlabeled pool and `labels_per_class`; `Data` and `Split` |
| `teacher_pass.py` | the teacher's outputs on the training examples, once, and the students' batches |
| `teacher_cache.py` | `tfdistill cache`: a config's teacher pass on Apache Beam into `cache.path`, which runs then read |
| `training.py` | training a teacher and a student (shared by runs, the examples and the benchmarks) |
| `evaluation.py` | size, accuracy and latency of each model, fidelity, the gain |
| `exports.py` | the distilled student's SavedModel and verified `.tflite` files |
| `quantization_stage.py` | the int8 student's quantization-aware distillation (`qat`) and its verified `.tflite` file |
| `run_report.py`, `reports.py` | the printed table and `report.md`; the plots |
| `runs.py`, `run_folder.py` | a run (and a recipe search) from a config; its folder |
| `demo.py` | the main job: a run of the default config on Fashion-MNIST with few labels |
| `models.py` | the built-in teacher and student CNNs |

Nothing in the library (`tfdistill.*` outside this package) imports it.
"""
