"""A fork server for worker processes (standard library + torch only).

Starting a worker costs a Python start and `import torch` (seconds) before any useful work. The zygote
pays that once: it imports torch WITHOUT initialising CUDA, then forks a child per worker request.
Each child starts a new session (so the service can kill its whole process group), takes the stdio
sockets the service passed in, applies resource limits and a fresh network namespace, replaces its
environment, and runs the requested module as `__main__`. CUDA is initialised in the child only.

    python -m sandbox.runtime.zygote CONTROL_FD EVENTS_FD

Control socket (service ↔ zygote, request/response): the service sends one JSON request with two
file descriptors attached (the child's stdio socket and its stderr pipe); the zygote answers
`{"pid": n}` or `{"error": "..."}` as one JSON line. Events socket (zygote → service): one JSON line
`{"exited": pid, "status": code}` for every child that ends (negative code: killed by that signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import selectors
import socket
import sys
from typing import Any

__all__ = ["main"]

_MAX_FDS = 2


def _child(request: dict[str, Any], io_fd: int, err_fd: int) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setsid()
        os.dup2(io_fd, 0)
        os.dup2(io_fd, 1)
        os.dup2(err_fd, 2)
        os.closerange(3, 65536)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from sandbox.runtime.limits import apply_limits

        limits = request["limits"]
        apply_limits(
            cpu_seconds=limits.get("cpu_seconds"),
            address_space_bytes=limits.get("address_space_bytes"),
            open_files=int(limits["open_files"]),
            file_size_bytes=int(limits["file_size_bytes"]),
            isolate_network=bool(limits["isolate_network"]),
            max_processes=limits.get("max_processes"),
            isolate_pids=bool(limits.get("isolate_pids", False)),
            join_pids_of=limits.get("join_pids_of"),
        )
        sys.argv = [request["module"], *request["argv"]]
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child must always end through os._exit below
        import traceback

        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(events: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        message = {"exited": pid, "status": os.waitstatus_to_exitcode(status)}
        with contextlib.suppress(OSError):
            events.sendall((json.dumps(message) + "\n").encode())


def _serve_request(control: socket.socket) -> bool:
    """Handle one spawn request; False when the service has gone away."""
    data, fds, _, _ = socket.recv_fds(control, 1 << 20, _MAX_FDS)
    if not data:
        return False
    try:
        request = json.loads(data)
        if len(fds) != _MAX_FDS:
            raise ValueError(f"expected {_MAX_FDS} file descriptors, got {len(fds)}")
        pid = os.fork()
        if pid == 0:
            control.close()
            _child(request, fds[0], fds[1])
        answer: dict[str, Any] = {"pid": pid}
    except Exception as exc:  # noqa: BLE001 - a bad request is answered, the server keeps serving
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        for fd in fds:
            os.close(fd)
    control.sendall((json.dumps(answer) + "\n").encode())
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    control = socket.socket(fileno=int(args[0]))
    events = socket.socket(fileno=int(args[1]))
    import torch  # the point of the zygote: children inherit an imported torch

    if os.path.exists("/dev/nvidiactl"):  # a GPU host: its reference workers count FLOPs for the
        # speed-of-light bound, and torch's dispatch modes import dynamo on first use (~5 s). Importing
        # initialises no CUDA, so forked children stay able to create their own contexts.
        import torch._dynamo
        import torch.utils.flop_counter  # noqa: F401

    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    while True:
        for _key, _ in selector.select(timeout=0.05):
            if not _serve_request(control):
                return 0
        _reap(events)


if __name__ == "__main__":
    sys.exit(main())
