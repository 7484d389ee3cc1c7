"""Bench commands started warm: one command server imports torch and ltdistill once, then forks a child for each
command, where a fresh interpreter pays seconds of imports per command (torch, the torch._dynamo that torch.optim
pulls in, ltdistill's modules): most of a small cell's time. Each child is a process of its own as before: its
output goes to the command's log, its exit status is the command's, it dies with the server, and the server dies
with the bench (PR_SET_PDEATHSIG at both steps). The server never runs a torch operation, so every child starts
from the state a fresh interpreter has after the same imports. Linux only (fork, file descriptors passed over a
Unix socket); elsewhere, and under `bench --fresh-interpreters`, each command is a fresh interpreter.

CommandServer starts the server with the run directory among its arguments, so that the server and its children
are found by it in a process list, as the commands themselves are."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable

from ltdistill.bench.suite import CLI

STATUS = struct.Struct("i")
# the server's entry is the CLI's (`serve_commands`), which hands its own `main` down to `server_main`: the bench
# sits below the CLI and names it only here, as text (`-c`, not `-m`: cli's module would run twice)
SERVER_MAIN = "import sys; from ltdistill.cli import serve_commands; serve_commands(sys.argv[1:])"
AVAILABLE = sys.platform == "linux"


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG (Linux): SIGKILL when the parent dies, so a bench killed with SIGKILL takes its running
    commands with it; otherwise an orphan would go on writing into a cell that a rerun resumes at the same time."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class CommandServer:
    """The bench's side. Made on the main thread (PR_SET_PDEATHSIG follows the thread that started the child);
    `run` may be called from several threads at once."""

    def __init__(self, label: str):
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen([sys.executable, "-c", SERVER_MAIN, str(theirs.fileno()), str(os.getpid()),
                                         label], pass_fds=[theirs.fileno()], preexec_fn=die_with_parent,
                                        stdin=subprocess.DEVNULL)
        theirs.close()
        self.lock, self.ready = threading.Lock(), False

    def run(self, cmd: list[str], output: int, threads: int | None = None) -> int:
        """Run the ltdistill command `cmd` (CLI + arguments) in a child of the server, its stdout and stderr on the
        file descriptor `output`, with `threads` torch threads (None: torch's default); its exit status, or -1 when
        it died without one (killed by a signal)."""
        assert cmd[:len(CLI)] == CLI, cmd
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = json.dumps({"argv": cmd[len(CLI):], "cwd": os.getcwd(), "threads": threads}).encode()
        with self.lock:
            if not self.ready:  # the server's imports overlap the bench's planning; its first word is "ready"
                if self.control.recv(16) != b"ready":
                    raise OSError(f"the bench's command server ended (exit {self.process.wait()})")
                self.ready = True
            socket.send_fds(self.control, [request], [output, theirs.fileno()])
        theirs.close()
        with ours:  # the status, or end of file when the child died first (a process it left may hold the socket:
            status = b""  # read the status alone, not up to end of file)
            while len(status) < STATUS.size and (chunk := ours.recv(STATUS.size - len(status))):
                status += chunk
        return STATUS.unpack(status)[0] if len(status) == STATUS.size else -1

    def close(self) -> None:
        """End the server: at its next receive once it has served; at once when it never served a command (a
        suite with nothing left to run), rather than wait seconds for imports nothing will use."""
        if not self.ready:
            self.process.kill()
        self.control.close()  # the server's next receive ends, and so does the server
        self.process.wait()


SERVER: CommandServer | None = None  # the running bench's (commands_served), shared by its worker threads


@contextlib.contextmanager
def commands_served(label: str, enabled: bool = True):
    """Within the block the bench's commands run warm (`started_warm`), where the platform allows."""
    global SERVER
    if not (enabled and AVAILABLE):
        yield
        return
    SERVER = CommandServer(label)
    try:
        yield
    finally:
        server, SERVER = SERVER, None
        server.close()


def started_warm(cmd: list[str], output: int, threads: int | None = None) -> int | None:
    """The exit status of `cmd` run by the bench's command server with `threads` torch threads; None where there is
    no server or `cmd` is not an ltdistill command of this interpreter (torchrun, another program): the caller
    starts it as a process."""
    if SERVER is None or cmd[:len(CLI)] != CLI:
        return None
    return SERVER.run(cmd, output, threads)


Command = Callable[[list[str]], int]  # the CLI's main: arguments in, exit status out


def serve(control: socket.socket, bench_pid: int, command: Command) -> None:
    """The server's loop: a child per request, which runs `command` (the CLI's main, its modules already imported
    by the server's entry), until the bench closes its end."""
    die_with_parent()
    if os.getppid() != bench_pid:  # the bench died before the line above took effect
        os._exit(1)
    import torch  # noqa: F401  the imports every command pays once here
    import torch._dynamo  # noqa: F401  (torch.optim imports it at the first optimizer)

    from ltdistill import evaluate, experts, methods, train  # noqa: F401

    control.send(b"ready")
    server = os.getpid()
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:  # reap the children that finished
                pass
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        if not message:  # the bench closed its end; its commands have reported, so the server has nothing to keep:
            os._exit(0)  # skip the interpreter's teardown of torch (a second or two the bench would wait for)
        if os.fork() == 0:
            control.close()
            run_child(json.loads(message), *fds, server=server, command=command)
        for fd in fds:
            os.close(fd)


def run_child(request: dict, output: int, status: int, *, server: int, command: Command) -> None:
    """A forked child: become the command, report its exit status, and leave without returning to the loop."""
    code = 1
    try:
        die_with_parent()
        if os.getppid() != server:
            os._exit(1)
        os.set_inheritable(status, False)  # the command's own subprocesses get its output, not its status line
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        os.chdir(request["cwd"])
        if request.get("threads"):  # what OMP_NUM_THREADS does for a fresh interpreter (the server ran no torch op)
            import torch

            os.environ["OMP_NUM_THREADS"] = str(request["threads"])
            torch.set_num_threads(request["threads"])
        sys.argv = ["ltdistill", *request["argv"]]
        code = command(request["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()  # what the interpreter's own exit would run
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.write(status, STATUS.pack(code))
        os._exit(code & 0xFF)


def server_main(argv: list[str], command: Command) -> None:
    """argv: the control socket's descriptor, the bench's pid, the run directory (a label for process lists)."""
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the bench, which reports it
        serve(socket.socket(fileno=int(argv[0])), int(argv[1]), command)
