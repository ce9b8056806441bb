"""`python stand_in.py SOCKET SCRIPT ARGS...`: `python SCRIPT ARGS...`, forked from the script server at SOCKET.

See `tests/script_server.py`. Imports nothing heavy; where the server
cannot be reached, runs the script itself.
"""

import os
import runpy
import sys

import tfdistill_command


def main():
    tfdistill_command._fork_server_module().run_worker(sys.argv[1])  # returns only where the server cannot be reached
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
