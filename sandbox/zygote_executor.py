"""Workers forked from a warm zygote process: the `import torch` cost is paid once, not per candidate.

Same contract as `LocalExecutor` (own session and process group, rlimits, scrubbed environment, fresh
network namespace, SIGKILL of the group on close), but each worker is a fork of
`sandbox.runtime.zygote`, which has torch imported and CUDA untouched. The zygote itself runs with a
scrubbed environment, so no secret is ever in its memory; a zygote that dies is restarted on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from kernelwright.errors import SandboxError
from kernelwright.settings import Settings
from sandbox.executor import Executor, LocalExecutor, ProcessSpec, WorkerProcess, _StreamWorker, peer_limits
from sandbox.runtime.limits import kill_worker_tree
from sandbox.toolchains import detect_gpu_arch
from sandbox.verify import worker_env

__all__ = ["ZygoteExecutor", "make_executor"]


class _ZygoteWorker(_StreamWorker):
    def __init__(
        self,
        pid: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stderr: asyncio.StreamReader,
        exited: asyncio.Future[int],
    ) -> None:
        super().__init__(reader, writer, stderr)
        self.pid = pid
        self._exited = exited

    async def _wait_exit(self, timeout: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        return None

    def _kill(self) -> None:
        kill_worker_tree(self.pid, alive=not self._exited.done())


class ZygoteExecutor(Executor):
    """Forks workers from one long-lived zygote started with `python` and the scrubbed `env`."""

    def __init__(
        self, *, python: str | None = None, env: Mapping[str, str], cwd: Path, pid_namespace: bool = False
    ) -> None:
        self._python = python or sys.executable
        self._env = dict(env)
        self._cwd = cwd
        self._proc: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._events_writer: asyncio.StreamWriter | None = None
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()
        probe = LocalExecutor()
        self._netns = probe.network_isolation_available()
        self._pidns = pid_namespace and probe.pid_isolation_available()

    async def _start(self) -> None:
        control, control_child = socket.socketpair()
        events, events_child = socket.socketpair()
        self._cwd.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            self._python,
            "-s",
            "-m",
            "sandbox.runtime.zygote",
            str(control_child.fileno()),
            str(events_child.fileno()),
            pass_fds=(control_child.fileno(), events_child.fileno()),
            env=self._env,
            cwd=self._cwd,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        control_child.close()
        events_child.close()
        self._control = control
        # keep the writer referenced: a collected StreamWriter closes the transport under the reader
        reader, self._events_writer = await asyncio.open_unix_connection(sock=events)
        self._events_task = asyncio.create_task(self._read_events(reader))

    async def _read_events(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            event = json.loads(line)
            future = self._exits.setdefault(int(event["exited"]), asyncio.get_running_loop().create_future())
            if not future.done():
                future.set_result(int(event["status"]))
        for future in self._exits.values():  # the zygote died: its children are orphans now
            if not future.done():
                future.set_result(-int(signal.SIGKILL))

    def _request(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        assert self._control is not None
        socket.send_fds(self._control, [json.dumps(request).encode()], fds)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = self._control.recv(65536)
            if not chunk:
                raise SandboxError("the zygote closed its control socket")
            answer += chunk
        parsed = json.loads(answer)
        assert isinstance(parsed, dict)
        return parsed

    async def _uninterrupted(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """One request/answer on the control socket, finished even when the caller is cancelled.

        The thread owns the socket until it has read its answer: releasing the lock earlier (a job
        cancelled mid-spawn) let the next spawn's answer be read by the abandoned thread, so another
        job got a garbled answer. A worker started for a cancelled spawn is killed at once.
        """
        pending = asyncio.ensure_future(asyncio.to_thread(self._request, request, fds))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            while not pending.done():  # a fork takes milliseconds: wait it out, whatever else is cancelled
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(pending)
            if pending.exception() is None and "pid" in (late := pending.result()):
                kill_worker_tree(int(late["pid"]), alive=True)
            raise

    async def spawn(self, spec: ProcessSpec) -> WorkerProcess:
        if "-m" not in spec.argv:
            raise SandboxError("the zygote executor runs modules: argv must contain -m MODULE")
        module_at = spec.argv.index("-m") + 1
        limits = asdict(peer_limits(replace(spec.limits, isolate_pids=self._pidns), spec.peer))
        limits["isolate_network"] = spec.limits.isolate_network and self._netns
        request = {
            "module": spec.argv[module_at],
            "argv": spec.argv[module_at + 1 :],
            "cwd": str(spec.cwd),
            "env": dict(spec.env),
            "limits": limits,
        }
        io_parent, io_child = socket.socketpair()
        err_read, err_write = os.pipe()
        try:
            async with self._lock:
                if self._proc is None or self._proc.returncode is not None:
                    await self._start()
                try:
                    answer = await self._uninterrupted(request, [io_child.fileno(), err_write])
                except (OSError, SandboxError):
                    await self.aclose()  # a broken zygote: start a fresh one and try once more
                    await self._start()
                    answer = await self._uninterrupted(request, [io_child.fileno(), err_write])
        except asyncio.CancelledError:
            os.close(err_read)
            io_parent.close()
            raise
        finally:
            io_child.close()
            os.close(err_write)
        if "pid" not in answer:
            os.close(err_read)
            io_parent.close()
            raise SandboxError(f"the zygote could not start a worker: {answer.get('error')}")
        pid = int(answer["pid"])
        exited = self._exits.setdefault(pid, asyncio.get_running_loop().create_future())
        reader, writer = await asyncio.open_unix_connection(sock=io_parent, limit=64 * 1024 * 1024)
        stderr = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stderr), os.fdopen(err_read, "rb", buffering=0)
        )
        worker = _ZygoteWorker(pid, reader, writer, stderr, exited)
        worker.network_isolated = bool(limits["isolate_network"])
        worker.pid_isolated = bool(limits["isolate_pids"]) or limits["join_pids_of"] is not None
        worker.namespace_relay = pid if limits["isolate_pids"] else None
        return worker

    async def aclose(self) -> None:
        """Stop the zygote (its running workers are killed by their owners' close())."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
        self._proc = None


def make_executor(settings: Settings) -> Executor:
    """The executor the settings ask for: `zygote` (warm forks, the default), `local` (a process each) or
    `docker` (a container each). Workers get a PID namespace each where the OS allows; the GPU
    verifier's candidate joins its reference's (CUDA IPC does not cross PID namespaces)."""
    gpu = settings.device == "cuda" or (settings.device == "auto" and detect_gpu_arch() is not None)
    if settings.executor == "local":
        return LocalExecutor(pid_namespace=True)
    if settings.executor == "docker":
        from sandbox.docker_executor import DockerExecutor

        return DockerExecutor.from_settings(settings, gpu=gpu)
    scratch = settings.scratch_dir / "zygote"
    return ZygoteExecutor(
        python=settings.worker_python,
        env=worker_env(settings, scratch, None, gpu),
        cwd=scratch,
        pid_namespace=True,
    )
