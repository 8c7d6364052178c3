"""Workers in Docker containers: the same `Executor` interface as `LocalExecutor`, stronger walls.

Each worker is one container of the sandbox image (see `sandbox/images/`): no network, a read-only root,
a size-limited tmpfs at /tmp for HOME/TMPDIR/caches, a non-root user, every capability dropped,
no-new-privileges, memory (swap included), task and CPU limits, rlimits, and `timeout -s KILL` around the
worker so it dies on its own even if the service that started it is gone. `init=True` puts a reaping
init at PID 1: when the worker ends, the container ends, and every process it started dies with it.

A worker spawned with a `peer` (the GPU verifier's candidate, whose peer is the reference: legacy CUDA
IPC crosses neither IPC nor PID namespaces) joins that container's IPC and PID namespaces. Each pair
shares only with itself, never with the host or other pairs; the reference makes itself undumpable, so
the candidate beside it can neither trace it nor read its memory through /proc.

The verifier lays one job out as sibling folders (`<job>/reference`, `<job>/candidate`) under the
scratch root and passes host paths in its messages, so a worker gets its job folder (the parent of its
cwd when that lies under the scratch root, else its cwd) bind-mounted at the same path. When the service
runs as root the job folder is handed to the sandbox user first; otherwise containers run as the
service's own (non-root) uid.

Stdio: the container is created with stdin open and no TTY and attached before it starts, so no output is
lost; a thread reads the attach socket (blocking I/O works over every Docker transport) and splits the
multiplexed frames into the protocol stream (an asyncio reader, each pending line capped) and a capped
stderr tail. Containers carry labels; `sweep_stale()` (run once per executor) removes those whose
service is gone or that outlived `max_lifetime_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
from docker.models.containers import Container
from docker.types import DeviceRequest, Ulimit

import docker
from kernelwright.errors import DockerUnavailableError, SandboxError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from sandbox.executor import Executor, ProcessSpec, WorkerExited, WorkerProcess, parse_message

__all__ = ["SANDBOX_UID", "DockerExecutor", "DockerOptions", "docker_client", "sweep_stale"]

SANDBOX_UID = 10001  # the unprivileged user baked into every kernelwright sandbox image
LABEL = "kernelwright.sandbox"
_STDERR_TAIL = 8000
_MAX_LINE = 64 * 1024 * 1024
# host-specific variables that must not reach the container (the image sets its own)
_HOST_ONLY = frozenset(
    {
        "PATH",
        "PYTHONPATH",
        "LD_LIBRARY_PATH",
        "HOME",
        "TMPDIR",
        "TRITON_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
        "KERNELWRIGHT_KERNEL_CACHE",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "TRITON_PTXAS_PATH",
    }
)
log = get_logger(__name__)


def docker_client(timeout: float = 30.0) -> docker.DockerClient:
    """A client of a daemon that answers, or `DockerUnavailableError` saying what to do."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(
            f"no Docker daemon answers at {where} ({exc}). Start one (`sudo systemctl start docker`, or "
            "`dockerd &` as root), point DOCKER_HOST at a running daemon, or run workers without Docker: "
            "KERNELWRIGHT_EXECUTOR=local (or zygote)."
        ) from exc
    return client


@dataclass(frozen=True)
class DockerOptions:
    """How containers are made; `DockerExecutor.from_settings` fills it from `Settings`."""

    image: str
    memory: str = "8g"
    pids: int = 512
    cpus: float = 2.0
    tmpfs_size: str = "1g"
    max_lifetime_s: float = 7200.0
    scratch_root: Path | None = None  # the verifier's scratch root: jobs below it get their job folder
    cuda_home: Path | None = None  # mounted read-only at the same path when set
    gpu: bool = False
    python: str = "python3"
    labels: Mapping[str, str] = field(default_factory=dict)


def _owner_labels() -> dict[str, str]:
    return {
        LABEL: "worker",
        "kernelwright.host": socket.gethostname(),
        "kernelwright.pid": str(os.getpid()),
        "kernelwright.started": str(int(time.time())),
    }


def sweep_stale(client: docker.DockerClient, max_lifetime_s: float) -> list[str]:
    """Remove sandbox containers left by a service that died (same host, pid gone) or that outlived
    `max_lifetime_s` (plus a margin); returns their ids. Other live services' containers are kept."""
    removed = []
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels
        started = float(labels.get("kernelwright.started", "0"))
        stale = time.time() - started > max_lifetime_s + 300
        if labels.get("kernelwright.host") == host:
            pid = int(labels.get("kernelwright.pid", "0"))
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                stale = True
            except PermissionError:
                pass
        if stale:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
                removed.append(str(container.id))
    if removed:
        log.info("swept stale sandbox containers", count=len(removed))
    return removed


def _exit_code(status: int) -> int:
    # tini and `timeout` report a signal death as 128 + N: show it as the signal, like the local executor
    return -(status - 128) if 128 < status < 128 + 65 else status


class _AttachPump:
    """Reads the attach socket in a thread: protocol bytes to an asyncio reader, stderr to a tail."""

    def __init__(self, sock: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._raw = getattr(sock, "_sock", sock)
        self._loop = loop
        self.stdout = asyncio.StreamReader(limit=_MAX_LINE, loop=loop)
        self.stderr = bytearray()
        self._lock = threading.Lock()
        self._pending_line = 0
        self.overflowed = False
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docker-attach", daemon=True)
        self._thread.start()

    def _recv(self, n: int) -> bytes:
        if isinstance(self._raw, socket.socket):
            return self._raw.recv(n)
        data = self._sock.read(n)
        return bytes(data or b"")

    def _exactly(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = self._recv(n - len(chunks))
            if not chunk:
                return None
            chunks.extend(chunk)
        return bytes(chunks)

    def _feed(self, data: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(self.stdout.feed_data, data)

    def _run(self) -> None:
        try:
            while (header := self._exactly(8)) is not None:
                kind, size = header[0], struct.unpack(">I", header[4:])[0]
                payload = self._exactly(size)
                if payload is None:
                    break
                if kind == 1 and not self.overflowed:
                    newline = payload.rfind(b"\n")
                    self._pending_line = (
                        len(payload) - newline - 1 if newline >= 0 else self._pending_line + len(payload)
                    )
                    if self._pending_line > _MAX_LINE:
                        self.overflowed = True  # stop buffering: the reader reports an over-long line
                        error = ValueError(f"a protocol line longer than {_MAX_LINE} bytes")
                        self._loop.call_soon_threadsafe(self.stdout.set_exception, error)
                        continue
                    self._feed(payload)
                elif kind == 2:
                    with self._lock:
                        self.stderr.extend(payload)
                        del self.stderr[: max(0, len(self.stderr) - _STDERR_TAIL)]
        except OSError:
            pass
        finally:
            self.done.set()
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.stdout.feed_eof)

    def send(self, data: bytes) -> None:
        if isinstance(self._raw, socket.socket):
            self._raw.sendall(data)
        else:
            self._sock.write(data)
            with contextlib.suppress(AttributeError):
                self._sock.flush()

    def tail(self) -> str:
        with self._lock:
            return self.stderr.decode("utf-8", errors="replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._thread.join(timeout=5)


class DockerWorker(WorkerProcess):
    """One running container, spoken to by JSON lines over its attached stdio."""

    network_isolated = True
    pid_isolated = True

    def __init__(self, container: Container, pump: _AttachPump) -> None:
        self.container = container
        self._pump = pump
        self._status: int | None = None
        self._closed = False
        self._send_lock = asyncio.Lock()

    @property
    def stderr_tail(self) -> str:
        return self._pump.tail()

    async def send(self, message: Mapping[str, Any]) -> None:
        data = (json.dumps(dict(message)) + "\n").encode()
        try:
            async with self._send_lock:
                await asyncio.to_thread(self._pump.send, data)
        except OSError as exc:
            raise WorkerExited(await self._wait_exit(5), self.stderr_tail) from exc

    async def receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(self._pump.stdout.readline(), timeout)
        except ValueError as exc:
            raise SandboxError(f"worker sent an over-long message ({exc}); output is capped") from exc
        if not line:
            status = await self._wait_exit(10)
            await asyncio.to_thread(self._pump.done.wait, 2)
            raise WorkerExited(status, self.stderr_tail + await self._oom_note())
        return parse_message(line)

    async def _wait_exit(self, timeout: float) -> int | None:
        if self._status is None:
            try:
                result = await asyncio.wait_for(asyncio.to_thread(self.container.wait), timeout)
                self._status = _exit_code(int(result.get("StatusCode", -1)))
            except (TimeoutError, docker.errors.APIError, docker.errors.NotFound):
                return None
            except Exception as exc:  # noqa: BLE001 - requests' read timeout and friends: status unknown
                log.debug("waiting for a container failed", error=repr(exc))
                return None
        return self._status

    async def _oom_note(self) -> str:
        def inspect() -> bool:
            with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
                self.container.reload()
                return bool(self.container.attrs.get("State", {}).get("OOMKilled"))
            return False

        oom = await asyncio.to_thread(inspect)
        return "\n[the container hit its memory limit and was OOM-killed]" if oom else ""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.container.remove(force=True)

        await asyncio.to_thread(remove)
        await asyncio.to_thread(self._pump.close)


class DockerExecutor(Executor):
    """Starts one container per worker through the Docker daemon (see the module docstring)."""

    def __init__(self, options: DockerOptions, *, client: docker.DockerClient | None = None) -> None:
        self.options = options
        self._client = client
        self._swept = False
        self._image_checked = False

    @classmethod
    def from_settings(cls, settings: Settings, *, gpu: bool = False) -> DockerExecutor:
        from sandbox.images.offline import default_image

        return cls(
            DockerOptions(
                image=settings.docker_image or default_image(gpu=gpu),
                memory=settings.docker_memory,
                pids=settings.docker_pids,
                cpus=settings.docker_cpus,
                tmpfs_size=settings.docker_tmpfs_size,
                max_lifetime_s=settings.docker_max_lifetime_s,
                scratch_root=settings.scratch_dir,
                cuda_home=settings.cuda_home if settings.docker_mount_cuda else None,
                gpu=gpu,
            )
        )

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def _prepare(self) -> None:
        """Once per executor: sweep what dead services left behind, check that the image exists."""
        if not self._swept:
            sweep_stale(self.client, self.options.max_lifetime_s)
            self._swept = True
        if not self._image_checked:
            try:
                self.client.images.get(self.options.image)
            except docker.errors.ImageNotFound as exc:
                raise DockerUnavailableError(
                    f"the sandbox image {self.options.image!r} is not in the Docker daemon: build it with "
                    "`kernelwright sandbox build-image --offline` (or --gpu on a GPU host), or set "
                    "KERNELWRIGHT_DOCKER_IMAGE to an image that holds the worker runtime"
                ) from exc
            self._image_checked = True

    def _job_dir(self, cwd: Path) -> Path:
        root = self.options.scratch_root
        cwd = cwd.resolve()
        if root is not None:
            root = root.resolve()
            if cwd.parent != root and cwd.parent.is_relative_to(root):
                return cwd.parent
        return cwd

    def _user(self, job: Path) -> str:
        if os.getuid() != 0:
            return f"{os.getuid()}:{os.getgid()}"
        # root on the host: hand the job folder to the sandbox user, never run the candidate as root
        for path in [job, *job.rglob("*")]:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(path, SANDBOX_UID, SANDBOX_UID)
        return f"{SANDBOX_UID}:{SANDBOX_UID}"

    def _environment(self, env: Mapping[str, str], devices: list[str]) -> dict[str, str]:
        result = {k: v for k, v in env.items() if k not in _HOST_ONLY}
        result.update(
            HOME="/tmp",
            TMPDIR="/tmp",
            TRITON_CACHE_DIR="/tmp/.triton",
            TORCHINDUCTOR_CACHE_DIR="/tmp/.inductor",
        )
        if self.options.cuda_home is None:
            result.pop("CUDA_HOME", None)
        else:
            result["CUDA_HOME"] = str(self.options.cuda_home)
        if devices:  # the container sees only its devices, numbered from 0
            result["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(devices)))
        return result

    def _command(self, spec: ProcessSpec) -> list[str]:
        if not spec.argv:
            raise SandboxError("a worker needs a command: ProcessSpec.argv is empty")
        lifetime = str(max(1, int(self.options.max_lifetime_s)))
        # argv[0] is the host's interpreter: inside, the image's python runs the same arguments
        return ["timeout", "-s", "KILL", lifetime, self.options.python, *spec.argv[1:]]

    def _start_container(self, spec: ProcessSpec, loop: asyncio.AbstractEventLoop) -> DockerWorker:
        """Blocking: create, attach, start (runs in a worker thread)."""
        self._prepare()
        opts, limits = self.options, spec.limits
        job = self._job_dir(spec.cwd)
        volumes = {str(job): {"bind": str(job), "mode": "rw"}}
        if opts.cuda_home is not None and opts.cuda_home.is_dir():
            volumes[str(opts.cuda_home)] = {"bind": str(opts.cuda_home), "mode": "ro"}
        devices: list[str] = []
        extra: dict[str, Any] = {}
        if opts.gpu:
            visible = spec.env.get("CUDA_VISIBLE_DEVICES", "").strip()
            devices = [d for d in visible.split(",") if d] if visible else []
            request = (
                DeviceRequest(device_ids=devices, capabilities=[["gpu"]])
                if devices
                else DeviceRequest(count=-1, capabilities=[["gpu"]])
            )
            extra["device_requests"] = [request]
        env = self._environment(spec.env, devices)
        if spec.peer is None:
            extra["ipc_mode"] = "shareable"  # a peer may join it later; nothing else can
        else:
            env["TINI_SUBREAPER"] = "1"  # the init is not PID 1 in the peer's namespace: still reap
            extra.update(self._peer_namespaces(spec.peer))
        ulimits = [
            Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
            Ulimit(name="fsize", soft=limits.file_size_bytes, hard=limits.file_size_bytes),
            Ulimit(name="core", soft=0, hard=0),
        ]
        if limits.cpu_seconds is not None:
            ulimits.append(Ulimit(name="cpu", soft=limits.cpu_seconds, hard=limits.cpu_seconds + 5))
        pids = min(opts.pids, limits.max_processes) if limits.max_processes is not None else opts.pids
        container = self.client.containers.create(
            opts.image,
            command=self._command(spec),
            environment=env,
            working_dir=str(spec.cwd.resolve()),
            user=self._user(job),
            stdin_open=True,
            tty=False,
            init=True,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={opts.tmpfs_size},mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=opts.memory,
            memswap_limit=opts.memory,
            pids_limit=pids,
            nano_cpus=int(opts.cpus * 1e9),
            ulimits=ulimits,
            volumes=volumes,
            labels={**_owner_labels(), **opts.labels},
            **extra,
        )
        try:
            sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            pump = _AttachPump(sock, loop)
            container.start()
        except BaseException:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise
        return DockerWorker(container, pump)

    @staticmethod
    def _peer_namespaces(peer: WorkerProcess) -> dict[str, str]:
        """Join `peer`'s IPC and PID namespaces: the pair shares them with each other, never with the
        host or other pairs (the peer's own init is PID 1 there; when it ends, both workers end)."""
        if not isinstance(peer, DockerWorker):
            raise SandboxError("a Docker worker can share namespaces only with another Docker worker")
        return {"ipc_mode": f"container:{peer.container.id}", "pid_mode": f"container:{peer.container.id}"}

    async def spawn(self, spec: ProcessSpec) -> WorkerProcess:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.to_thread(self._start_container, spec, loop)
        except docker.errors.ImageNotFound as exc:
            raise DockerUnavailableError(f"the sandbox image is gone: {exc}") from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"Docker could not start a worker container: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise DockerUnavailableError(f"lost the Docker daemon: {exc}") from exc

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
