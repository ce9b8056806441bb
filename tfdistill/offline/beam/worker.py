"""Beam's Python SDK worker for local multi-process runs, ended as soon as its work is reported.

`write_sharded_cache` on the `DirectRunner` in multi-processing mode starts
its worker processes through `tfdistill_command.beam_worker`, where Beam would
start `python -m apache_beam.runners.worker.sdk_worker_main`: on Linux each
worker is forked from a fork server (`fork_server`) that imported TensorFlow
once; otherwise TensorFlow is imported as the `tfdistill` command imports it
(without Keras's unused integrations: 1.2 to 2 CPU seconds and about 70 MiB
less per worker). Then Beam's harness runs, by Beam's own `main`. Once the
harness has reported its last bundle and closed its channels, the process
ends at once (`os._exit(0)`)
instead of tearing down TensorFlow, Keras and gRPC, which took about 0.75 s
per worker while the pipeline waited for its workers to exit (a quarter of
Beam's fixed cost on one machine). Every file a bundle wrote is closed before the bundle
is reported. A harness that fails raises as Beam's does: its traceback,
then a non-zero exit status.
"""

import logging
import os
import sys

from apache_beam.runners.worker import sdk_worker_main

def main(argv):
    sdk_worker_main.main(argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
