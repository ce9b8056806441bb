"""Local Beam workers forked from one process that imported TensorFlow once (`ForkServer`).

Beam's `DirectRunner` in multi-processing mode starts each worker as a new
Python process, and each one imports TensorFlow, Keras, Beam's harness and
tfdistill before it takes its first bundle: about 3 CPU seconds a worker,
paid after the pipeline starts. `write_sharded_cache` instead starts one
server process as soon as it is called, which imports all of that once while
the calling process loads the teacher and builds the pipeline; every worker
Beam then starts is forked from it, ready at once.

The worker command Beam runs is kept, as a stand-in
(`tfdistill_command.beam_worker(SOCKET)`, which imports nothing heavy): it
hands its environment (Beam's control and logging addresses, the pipeline
options) to the server over a Unix socket, the server forks a worker with
that environment and the stand-in's standard streams, and the stand-in waits
for the worker and exits with its status, so Beam sees a worker process as
it always does. A stand-in that is killed takes its worker with it; the
server ends, and kills what is left, when the calling process closes it or
dies. A stand-in that cannot reach the server starts the worker itself, as
before.

The server only imports before it forks: it runs no TensorFlow operation and
opens no gRPC channel, so each worker starts its own TensorFlow runtime and
channels after the fork.
"""

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import traceback

# Set to 0, local workers start as new processes, each importing TensorFlow itself.
ENVIRONMENT_SWITCH = "TFDISTILL_BEAM_FORK_SERVER"

# The stand-in's request and the server's reply are one JSON line each.
_NEWLINE = b"\n"


def fork_server_enabled():
    """Whether local Beam workers are forked from a `ForkServer`: on Linux, unless `TFDISTILL_BEAM_FORK_SERVER=0`.

    Elsewhere (on macOS a fork after some system libraries have started is
    unsafe) each worker is a new process.
    """
    return sys.platform.startswith("linux") and os.environ.get(ENVIRONMENT_SWITCH, "1") != "0"


class ForkServer:
    """The calling process's handle on a fork server it started (see the module's docstring).

    Args:
        python: the interpreter (default: this one).

    Example:
        >>> server = ForkServer()  # doctest: +SKIP
        >>> command = server.worker_command()  # what Beam runs for each worker  # doctest: +SKIP
        >>> server.close()  # doctest: +SKIP
    """

    # What the server process runs, `{fd}` its listening socket: imports, then `serve(fd)`.
    server_code = "import tfdistill_command; tfdistill_command.beam_fork_server({fd})"

    def __init__(self, python=None):
        self.used = False
        self.folder = tempfile.mkdtemp(prefix="tfdistill-beam-")
        self.path = os.path.join(self.folder, "fork-server.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            listener.listen(64)  # stand-ins that connect before the server is ready wait in the backlog
            code = self.server_code.format(fd=listener.fileno())
            # Its stdin is the pipe to this process: when it closes (close(), or this process died), the server ends.
            self.process = subprocess.Popen([python or sys.executable, "-c", code], stdin=subprocess.PIPE,
                                            pass_fds=[listener.fileno()])
        finally:
            listener.close()

    def worker_command(self, python=None):
        """The shell command Beam runs for each local worker: the stand-in for this server's workers."""
        self.used = True
        return f'{python or sys.executable} -c "import tfdistill_command; tfdistill_command.beam_worker({self.path!r})"'

    def close(self):
        """Ends the server (and any worker it still runs) and removes its socket; again, does nothing."""
        if not self.used:  # never handed to Beam (bad arguments, say): no worker to end, no import to wait for
            self.process.kill()
        self.process.stdin.close()  # the server's signal to end
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if os.path.isdir(self.folder):
            for name in os.listdir(self.folder):
                os.remove(os.path.join(self.folder, name))
            os.rmdir(self.folder)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def serve(listener_fd, parent_fd=0, run=None):
    """The server's loop: a worker forked per stand-in, its exit status sent back; ends when `parent_fd` closes.

    Run by `tfdistill_command.beam_fork_server` after its imports.

    Args:
        listener_fd: the listening Unix socket's file descriptor.
        parent_fd: the pipe from the calling process; its end ends the server.
        run: what a forked worker runs, given the stand-in's request (its
            `argv`, `env`, `cwd`), once it has the stand-in's streams,
            environment, arguments and working folder (default: Beam's SDK
            harness). Its return exits the worker with status 0, and
            `SystemExit` with its code.
    """
    listener = socket.socket(fileno=listener_fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_write)  # a worker's exit wakes the selector
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(parent_fd, selectors.EVENT_READ, "parent")
    selector.register(wake_read, selectors.EVENT_READ, "exited")
    workers = {}  # pid -> the stand-in's connection
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "accept":
                    connection, _ = listener.accept()
                    fds = []
                    try:
                        _, fds, _, _ = socket.recv_fds(connection, 1, 3)
                        request = _read_line(connection)
                    except (OSError, ValueError):
                        request = None
                    if request is None:  # a stand-in gone before its request was whole: no worker
                        for fd in fds:
                            os.close(fd)
                        connection.close()
                        continue
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        _run_worker(request, fds, [listener, connection, selector, *workers.values()],
                                    [wake_read, wake_write], parent_fd, run or _run_beam_worker)
                    for fd in fds:
                        os.close(fd)
                    workers[pid] = connection
                    selector.register(connection, selectors.EVENT_READ, pid)
                elif key.data == "parent":
                    if not os.read(parent_fd, 4096):
                        return
                elif key.data == "exited":
                    os.read(wake_read, 4096)
                    _reap(workers, selector)
                elif not _receive(key.fileobj):  # the stand-in is gone: so is its worker
                    selector.unregister(key.fileobj)
                    _kill(key.data)
    finally:
        for pid in workers:
            _kill(pid)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # no TensorFlow teardown


def _receive(connection):
    try:
        return connection.recv(4096)
    except OSError:
        return b""


def _read_line(connection):
    data = b""
    while not data.endswith(_NEWLINE):
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def _run_beam_worker(request):
    from tfdistill.offline.beam import worker

    worker.main(sys.argv)


def _run_worker(request, stand_in_fds, sockets, fds, parent_fd, run):
    """In the forked worker: the stand-in's standard streams, environment, arguments and folder, then `run`.

    Never returns.
    """
    code = 1
    try:
        if request.get("pgid") == request.get("pid"):  # a stand-in that leads its process group: killing the
            try:  # group kills its worker at the same moment
                os.setpgid(0, request["pgid"])
            except OSError:
                pass  # another session's group
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for item in sockets:  # the server's, and other stand-ins' connections: their ends must close with the server
            item.close()
        for fd in fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, parent_fd)  # the pipe from the calling process is the server's alone
        os.close(null)
        for target, fd in zip(request["fds"], stand_in_fds):  # it writes where its stand-in would
            if fd != target:
                os.dup2(fd, target)
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("cwd"):
            os.chdir(request["cwd"])
        sys.argv = request["argv"]
        run(request)
        code = 0
    except SystemExit as exit:
        code = _exit_status(exit.code)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _exit_status(code):
    """The status `sys.exit(code)` gives a process: 0 for `None`, the number, or 1 with the message on stderr."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _reap(workers, selector):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = workers.pop(pid, None)
        if connection is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        try:
            selector.unregister(connection)
        except KeyError:
            pass
        try:
            connection.sendall(json.dumps({"status": code}).encode() + _NEWLINE)
        except OSError:
            pass  # the stand-in is gone
        connection.close()


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_worker(path):
    """The stand-in: asks the server at `path` for a worker, waits for it and exits with its status.

    Returns only when the server cannot be reached (the caller then runs the
    worker itself). Imports nothing beyond the standard library.
    """
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        return
    streams = [fd for fd in (0, 1, 2) if _is_open(fd)]
    socket.send_fds(connection, [b"\0"], streams)  # the worker gets this process's standard streams
    request = {"env": dict(os.environ), "argv": sys.argv, "fds": streams, "cwd": os.getcwd(), "pid": os.getpid(),
               "pgid": os.getpgrp()}
    connection.sendall(json.dumps(request).encode() + _NEWLINE)
    reply = _read_line(connection)
    if reply is None:
        sys.stderr.write("tfdistill: Beam's fork server ended before the worker did\n")
        os._exit(1)
    code = reply["status"]
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:  # the worker was killed by a signal: so is its stand-in
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)
