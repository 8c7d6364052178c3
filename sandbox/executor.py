"""Executors start worker processes that run untrusted code; the service talks to them by JSON lines.

`LocalExecutor` runs a subprocess in its own process group and session, with resource limits, a
scrubbed environment (an allowlist: no API keys, no tokens, no KERNELWRIGHT_* settings), its working
directory in a scratch folder, a cap on its tasks (a pids cgroup), and a fresh network namespace when
the OS allows it (reported in `WorkerProcess.network_isolated`, never assumed). CPU workers also get a
fresh PID namespace (`pid_namespace=True`): they cannot signal the service, and nothing they start
outlives them. `sandbox.docker_executor.DockerExecutor` implements the same interface with containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kernelwright.errors import SandboxError
from sandbox.runtime.limits import (
    CLONE_NEWNET,
    CLONE_NEWPID,
    apply_limits,
    kill_worker_tree,
    remove_empty_cgroups,
)

__all__ = [
    "Executor",
    "Limits",
    "LocalExecutor",
    "ProcessSpec",
    "WorkerExited",
    "WorkerProcess",
    "parse_message",
    "peer_limits",
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
_STDERR_TAIL = 8000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process. None means unlimited."""

    cpu_seconds: int | None = 600
    address_space_bytes: int | None = None  # CUDA reserves huge virtual ranges: leave unset on GPUs
    open_files: int = 1024
    file_size_bytes: int = 2 * 1024**3
    isolate_network: bool = True
    max_processes: int | None = 1024  # tasks (processes and threads) of the worker and its descendants
    isolate_pids: bool = False  # a fresh PID namespace, where the executor can make one
    join_pids_of: int | None = None  # set by executors from ProcessSpec.peer: join that PID namespace


@dataclass(frozen=True)
class ProcessSpec:
    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    limits: Limits = field(default_factory=Limits)
    peer: WorkerProcess | None = None
    """A running worker this one must share a PID namespace with, and under Docker an IPC namespace too
    (the GPU verifier's pair: legacy CUDA IPC crosses neither). The pair shares them with nothing else."""


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
    pid_isolated: bool = False
    namespace_relay: int | None = None
    """Host pid of the process that made this worker's own PID namespace (local and zygote workers
    that have one): a worker spawned with this one as its `peer` joins that namespace."""

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

    async def aclose(self) -> None:  # noqa: B027 - most executors hold nothing between workers
        """Release what the executor keeps between workers (a zygote process, a Docker client)."""


def parse_message(line: bytes) -> dict[str, Any]:
    """One protocol line from a worker as a JSON object; anything else is a `SandboxError`."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SandboxError(f"worker sent a malformed message: {line[:200]!r}") from exc
    if not isinstance(message, dict):
        raise SandboxError(f"worker sent a non-object message: {line[:200]!r}")
    return message


def scrubbed_env(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Only allowlisted variables of `base` (default: this process) plus `extra`: secrets never pass."""
    source = os.environ if base is None else base
    env = {k: source[k] for k in _ENV_ALLOWLIST if k in source}
    env.update(extra)
    return env


def _apply_limits(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    apply_limits(
        cpu_seconds=limits.cpu_seconds,
        address_space_bytes=limits.address_space_bytes,
        open_files=limits.open_files,
        file_size_bytes=limits.file_size_bytes,
        isolate_network=limits.isolate_network,
        max_processes=limits.max_processes,
        isolate_pids=limits.isolate_pids,
        join_pids_of=limits.join_pids_of,
    )


def peer_limits(limits: Limits, peer: WorkerProcess | None) -> Limits:
    """`limits` for a worker that joins `peer`'s PID namespace, where the peer has one of its own;
    otherwise unchanged (a peer without one shares the host's, as its partner then does)."""
    if peer is None or peer.namespace_relay is None:
        return limits
    return replace(limits, isolate_pids=False, join_pids_of=peer.namespace_relay)


class _StreamWorker(WorkerProcess):
    """A worker reached through a line stream (pipes or a socket) with its stderr drained into a tail."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stderr: asyncio.StreamReader
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._stderr = bytearray()
        self._drain = asyncio.create_task(self._read_stderr(stderr))

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(4096):
            self._stderr.extend(chunk)
            del self._stderr[: max(0, len(self._stderr) - _STDERR_TAIL)]

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    @abstractmethod
    async def _wait_exit(self, timeout: float) -> int | None:
        """The exit status once the process ended (None if it did not end within `timeout`)."""

    @abstractmethod
    def _kill(self) -> None:
        """SIGKILL the worker and everything it started (may block briefly: runs in a thread)."""

    async def send(self, message: Mapping[str, Any]) -> None:
        try:
            self._writer.write((json.dumps(dict(message)) + "\n").encode())
            await self._writer.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise WorkerExited(await self._wait_exit(5), self.stderr_tail) from exc

    async def receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
        except ValueError as exc:  # a "line" past the stream's limit: a flood on the protocol stream
            raise SandboxError(f"worker sent an over-long message ({exc}); output is capped") from exc
        if not line:
            status = await self._wait_exit(5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drain), 2)
            raise WorkerExited(status, self.stderr_tail)
        return parse_message(line)

    async def close(self) -> None:
        await asyncio.to_thread(self._kill)
        await self._wait_exit(10)
        self._writer.close()
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain


class _LocalWorker(_StreamWorker):
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        super().__init__(proc.stdout, proc.stdin, proc.stderr)
        self._proc = proc

    async def _wait_exit(self, timeout: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._proc.wait(), timeout)
        return self._proc.returncode

    def _kill(self) -> None:
        kill_worker_tree(self._proc.pid, alive=self._proc.returncode is None)


def _probe_unshare(flag: int) -> bool:
    # a throwaway interpreter rather than os.fork(): forking a threaded process can deadlock
    probe = f"import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).unshare({flag}) == 0 else 1)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


class LocalExecutor(Executor):
    """Subprocess workers on this host.

    `pid_namespace`: run each worker as PID 1 of a fresh PID namespace where the OS allows it; a worker
    spawned with a `peer` joins the peer's namespace instead (the GPU verifier's pair: legacy CUDA IPC
    does not cross PID namespaces).
    """

    def __init__(self, *, pid_namespace: bool = False) -> None:
        self._netns_supported: bool | None = None
        self._pidns_supported: bool | None = None
        self._pid_namespace = pid_namespace
        remove_empty_cgroups()

    def effective_limits(self, limits: Limits) -> Limits:
        """`limits` with the namespaces this host cannot give (or this executor does not want) turned off."""
        return replace(
            limits,
            isolate_network=limits.isolate_network and self.network_isolation_available(),
            isolate_pids=(limits.isolate_pids or self._pid_namespace) and self.pid_isolation_available(),
        )

    async def spawn(self, spec: ProcessSpec) -> WorkerProcess:
        limits = peer_limits(self.effective_limits(spec.limits), spec.peer)
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
        worker.pid_isolated = limits.isolate_pids or limits.join_pids_of is not None
        worker.namespace_relay = proc.pid if limits.isolate_pids else None
        return worker

    def network_isolation_available(self) -> bool:
        """Whether this process may create network namespaces (probed once in a throwaway child)."""
        if self._netns_supported is None:
            self._netns_supported = _probe_unshare(CLONE_NEWNET)
        return self._netns_supported

    def pid_isolation_available(self) -> bool:
        """Whether this process may create PID namespaces (probed once in a throwaway child)."""
        if self._pidns_supported is None:
            self._pidns_supported = _probe_unshare(CLONE_NEWPID)
        return self._pidns_supported
