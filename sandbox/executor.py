"""Executors start worker processes that run untrusted code; the service talks to them by JSON lines.

`LocalExecutor` runs a subprocess in its own process group and session, with resource limits, a
scrubbed environment (an allowlist: no API keys, no tokens, no KERNELWRIGHT_* settings), its working
directory in a scratch folder, and a fresh network namespace when the OS allows it (reported in
`WorkerProcess.network_isolated`, never assumed). A Docker backend implements the same interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import resource
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelwright.errors import SandboxError

__all__ = [
    "Executor",
    "Limits",
    "LocalExecutor",
    "ProcessSpec",
    "WorkerExited",
    "WorkerProcess",
    "scrubbed_env",
]

_ENV_ALLOWLIST = (
    "PATH",
    "LANG",
    "LC_ALL",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "LD_LIBRARY_PATH",
    "NVIDIA_VISIBLE_DEVICES",
    "TRITON_PTXAS_PATH",
)
_CLONE_NEWNET = 0x40000000
_STDERR_TAIL = 8000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process. None means unlimited."""

    cpu_seconds: int | None = 600
    address_space_bytes: int | None = None  # CUDA reserves huge virtual ranges: leave unset on GPUs
    open_files: int = 1024
    file_size_bytes: int = 2 * 1024**3
    isolate_network: bool = True


@dataclass(frozen=True)
class ProcessSpec:
    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    limits: Limits = field(default_factory=Limits)


class WorkerExited(SandboxError):
    """The worker ended (crashed, was killed) before answering."""

    def __init__(self, returncode: int | None, stderr_tail: str) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(f"worker exited with {_describe_exit(returncode)}")


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


class WorkerProcess(ABC):
    """A running worker: send commands, receive messages, and always `close()` it."""

    network_isolated: bool = False

    @abstractmethod
    async def send(self, message: Mapping[str, Any]) -> None: ...

    @abstractmethod
    async def receive(self, timeout: float) -> dict[str, Any]:
        """The next message; raises TimeoutError after `timeout` s, WorkerExited if the worker died."""

    @abstractmethod
    async def close(self) -> None:
        """Kill the worker and everything it started (idempotent)."""

    @property
    @abstractmethod
    def stderr_tail(self) -> str: ...


class Executor(ABC):
    @abstractmethod
    async def spawn(self, spec: ProcessSpec) -> WorkerProcess: ...


def scrubbed_env(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Only allowlisted variables of `base` (default: this process) plus `extra`: secrets never pass."""
    source = os.environ if base is None else base
    env = {k: source[k] for k in _ENV_ALLOWLIST if k in source}
    env.update(extra)
    return env


def _apply_limits(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    if limits.cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    if limits.address_space_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.isolate_network:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:
            os.environ["KERNELWRIGHT_NO_NETNS"] = "1"  # the child's own copy; read back by nobody else


class _LocalWorker(WorkerProcess):
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._stderr = bytearray()
        self._drain = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(4096):
            self._stderr.extend(chunk)
            del self._stderr[: max(0, len(self._stderr) - _STDERR_TAIL)]

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    async def send(self, message: Mapping[str, Any]) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps(dict(message)) + "\n").encode())
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self._proc.wait()
            raise WorkerExited(self._proc.returncode, self.stderr_tail) from exc

    async def receive(self, timeout: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        if not line:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drain), 2)
            raise WorkerExited(self._proc.returncode, self.stderr_tail)
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SandboxError(f"worker sent a malformed message: {line[:200]!r}") from exc
        if not isinstance(message, dict):
            raise SandboxError(f"worker sent a non-object message: {line[:200]!r}")
        return message

    async def close(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain


class LocalExecutor(Executor):
    """Subprocess workers on this host."""

    def __init__(self) -> None:
        self._netns_supported: bool | None = None

    async def spawn(self, spec: ProcessSpec) -> WorkerProcess:
        limits = spec.limits
        if limits.isolate_network and not self.network_isolation_available():
            limits = Limits(
                limits.cpu_seconds,
                limits.address_space_bytes,
                limits.open_files,
                limits.file_size_bytes,
                isolate_network=False,
            )
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                cwd=spec.cwd,
                env=dict(spec.env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=lambda: _apply_limits(limits),
                limit=64 * 1024 * 1024,
            )
        except OSError as exc:
            raise SandboxError(f"could not start worker {spec.argv[0]}: {exc}") from exc
        worker = _LocalWorker(proc)
        worker.network_isolated = limits.isolate_network
        return worker

    def network_isolation_available(self) -> bool:
        """Whether this process may create network namespaces (probed once in a throwaway child)."""
        if self._netns_supported is None:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                libc = ctypes.CDLL(None, use_errno=True)
                os._exit(0 if libc.unshare(_CLONE_NEWNET) == 0 else 1)
            _, status = os.waitpid(pid, 0)
            self._netns_supported = os.waitstatus_to_exitcode(status) == 0
        return self._netns_supported
