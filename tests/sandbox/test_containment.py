"""The containment suite: hostile candidates against every executor backend.

Each scenario ends with the hostile code contained (capped, killed, refused), a clear verdict or
report, and the executor still healthy: an honest candidate verifies correct right after, through the
same executor. Scenarios that are candidates' code in `forward` go through the real verifier; the ones
about processes, files and sockets run as raw worker scripts through `Executor.spawn`, which reports
exactly what the hostile code could do. Backends: `local` (always), `zygote` (verifier scenarios; it runs
modules only) and `docker` (marker `docker`; skipped without a daemon or the sandbox image).
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.executor import Executor, Limits, ProcessSpec, WorkerExited, WorkerProcess
from sandbox.verify import VerifyOptions, verify_candidate, worker_env
from sandbox.zygote_executor import make_executor

DOCKER = pytest.param("docker", marks=pytest.mark.docker, id="docker")
RAW_BACKENDS = [pytest.param("local", id="local"), DOCKER]
ALL_BACKENDS = [pytest.param("local", id="local"), pytest.param("zygote", id="zygote"), DOCKER]

SCALE = """import torch
class Model(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor
    def forward(self, x):
        return x * self.factor
def get_inputs():
    return [torch.randn(8, 100)]
def get_init_inputs():
    return [3.0]
"""

TRITON_SCALE = """import torch, triton
import triton.language as tl

@triton.jit
def scale(x_ptr, y_ptr, n, factor, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * factor, mask=mask)

class ModelNew(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor
    def forward(self, x):
        HOSTILE
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        scale[(triton.cdiv(n, 256),)](x, y, n, self.factor, BLOCK=256)
        return y
"""


def _docker_image() -> str:
    from sandbox.images.offline import default_image

    return os.environ.get("KERNELWRIGHT_DOCKER_IMAGE") or default_image()


@pytest.fixture(scope="session")
def docker_ready() -> str:
    """The sandbox image, or a skip saying why Docker cannot be used here."""
    from kernelwright.errors import DockerUnavailableError
    from sandbox.docker_executor import docker_client

    # CI sets KERNELWRIGHT_REQUIRE_DOCKER after building the image: there, no Docker is a failure
    give_up = pytest.fail if os.environ.get("KERNELWRIGHT_REQUIRE_DOCKER") else pytest.skip
    try:
        client = docker_client(timeout=10)
    except DockerUnavailableError as exc:
        give_up(f"no Docker daemon: {exc}")
    image = _docker_image()
    present = bool(client.images.list(name=image))
    client.close()
    if not present:
        give_up(f"sandbox image {image} missing: run scripts/ci_docker.sh (kernelwright sandbox build-image)")
    return image


@pytest.fixture
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Callable[[str], Settings]:
    def make(backend: str) -> Settings:
        if backend != "docker":
            return settings.model_copy(update={"executor": backend, "device": "cpu"})
        image = request.getfixturevalue("docker_ready")
        return settings.model_copy(
            update={
                "executor": "docker",
                "device": "cpu",
                "docker_image": image,
                "docker_memory": "1g",
                "docker_pids": 256,
                "docker_tmpfs_size": "64m",
                "docker_max_lifetime_s": 600.0,
            }
        )

    return make


@asynccontextmanager
async def _executor(settings: Settings) -> AsyncIterator[Executor]:
    settings.ensure_dirs()
    executor = make_executor(settings)
    try:
        yield executor
    finally:
        await executor.aclose()


def _candidate(hostile: str) -> Candidate:
    return Candidate(target=Target.TRITON, source=TRITON_SCALE.replace("HOSTILE", hostile))


async def _verify(settings: Settings, executor: Executor, hostile: str, timeout_s: float = 120) -> Verdict:
    options = VerifyOptions(draws=2, timing_trials=0, timeout_s=timeout_s, device="cpu")
    problem = Problem(name="scale", source=SCALE)
    return await verify_candidate(
        problem, _candidate(hostile), settings=settings, executor=executor, options=options
    )


async def _honest_still_verifies(settings: Settings, executor: Executor) -> None:
    verdict = await _verify(settings, executor, "pass")
    assert verdict.outcome == Outcome.CORRECT, verdict.message


def _run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


def _survivors(token: str) -> list[int]:
    """Processes on this host whose command line carries `token` (container processes included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry.name))
    return found


async def _no_survivors(token: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while (left := _survivors(token)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not left, f"processes outlived their worker: {left}"


async def _spawn_script(
    executor: Executor, settings: Settings, script: str, *args: str, limits: Limits | None = None
) -> tuple[WorkerProcess, str]:
    """A raw worker running `script`; its argv carries a unique token to find its processes by."""
    token = f"kwtoken-{uuid.uuid4().hex}"
    cwd = settings.scratch_dir / uuid.uuid4().hex
    cwd.mkdir(parents=True)
    env = worker_env(settings, cwd, None, gpu=False)
    spec = ProcessSpec([sys.executable, "-s", "-c", script, token, *args], cwd, env, limits or Limits())
    return await executor.spawn(spec), token


# --------------------------------------------------------------------------- candidates in forward


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_cpu_spin_times_out_and_is_killed(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            verdict = await _verify(settings, executor, "while True: pass", timeout_s=10)
            assert verdict.outcome == Outcome.TIMEOUT and "killed" in verdict.message
            await _honest_still_verifies(settings, executor)

    _run(scenario())


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sleeping_past_the_timeout(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            started = time.monotonic()
            verdict = await _verify(settings, executor, "__import__('time').sleep(3600)", timeout_s=8)
            assert verdict.outcome == Outcome.TIMEOUT
            assert time.monotonic() - started < 120
            await _honest_still_verifies(settings, executor)

    _run(scenario())


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_no_secrets_in_the_environment(
    backend: str, backend_settings: Callable[[str], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = backend_settings(backend)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-containment-secret")
    monkeypatch.setenv("KERNELWRIGHT_GROQ_API_KEY", "gsk-containment-secret")
    monkeypatch.setenv("KERNELWRIGHT_DATABASE_URL", "postgresql://user:pw@db/kw")
    hostile = (
        "import os; leaked = [k for k, v in os.environ.items() if 'KEY' in k or 'KERNELWRIGHT' in k "
        "or 'containment-secret' in v or 'pw@db' in v]; assert not leaked, leaked"
    )

    async def scenario() -> None:
        async with _executor(settings) as executor:
            verdict = await _verify(settings, executor, hostile)
            assert verdict.outcome == Outcome.CORRECT, verdict.message

    _run(scenario())


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_flooding_stdout_and_stderr(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)
    # 2 x 64 MiB through print (stdout is pointed at stderr) and straight into fd 2, every draw
    hostile = (
        "import sys, os; chunk = 'x' * (1 << 20); [print(chunk) for _ in range(64)]; "
        "[os.write(2, chunk.encode()) for _ in range(64)]"
    )

    async def scenario() -> None:
        async with _executor(settings) as executor:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            verdict = await _verify(settings, executor, hostile, timeout_s=120)
            grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            # the flood is drained into a capped tail: the verdict stands and the service did not balloon
            assert verdict.outcome == Outcome.CORRECT, verdict.message
            assert grown_mb < 100, f"the service grew by {grown_mb:.0f} MiB reading a flood"
            await _honest_still_verifies(settings, executor)

    _run(scenario())


# --------------------------------------------------------------------------- raw worker scripts


_FORK_BOMB = """
import json, os, sys, time
forked = 0
for _ in range(5000):
    try:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        forked += 1
    except OSError:
        break
print(json.dumps({"forked": forked}), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_fork_bomb_is_capped_and_killed(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            worker, token = await _spawn_script(
                executor, settings, _FORK_BOMB, limits=Limits(max_processes=64)
            )
            try:
                report = await worker.receive(120)
            finally:
                await worker.close()
            assert report["forked"] < 64, report  # the cap held: the bomb hit it and stopped
            await _no_survivors(token)
            await _honest_still_verifies(settings, executor)

    _run(scenario())


_MEMORY_HOG = """
import json, sys
chunks = []
try:
    for _ in range(64):
        chunks.append(bytearray(64 << 20))  # touched: bytearray zero-fills its pages
except MemoryError:
    pass
print(json.dumps({"allocated_mb": 64 * len(chunks)}), flush=True)
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_memory_hog_is_refused_or_killed(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            # local: the address-space rlimit; docker: the container's memory limit (1 GiB, no swap)
            limits = Limits(address_space_bytes=1536 * 1024**2)
            worker, token = await _spawn_script(executor, settings, _MEMORY_HOG, limits=limits)
            try:
                report = await worker.receive(120)
                assert report["allocated_mb"] < 1536, report
            except WorkerExited as exc:  # killed by the OOM killer: a clear exit, said so
                assert exc.returncode == -9, exc
                assert "OOM" in exc.stderr_tail or backend != "docker", exc.stderr_tail
            finally:
                await worker.close()
            await _no_survivors(token)
            await _honest_still_verifies(settings, executor)

    _run(scenario())


_FILL_DISK = """
import json, os, sys
written, error = 0, None
chunk = b"x" * (1 << 20)
with open(os.path.join(os.environ.get("TMPDIR", "."), "fill.bin"), "wb", buffering=0) as out:
    try:
        for _ in range(4096):
            out.write(chunk)
            written += 1
    except OSError as exc:
        error = exc.strerror
print(json.dumps({"written_mb": written, "error": error}), flush=True)
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_filling_the_scratch_disk_stops_at_the_cap(
    backend: str, backend_settings: Callable[[str], Settings]
) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            # local: the file-size rlimit (32 MiB); docker: that and the 64 MiB tmpfs
            worker, token = await _spawn_script(
                executor, settings, _FILL_DISK, limits=Limits(file_size_bytes=32 << 20)
            )
            try:
                report = await worker.receive(120)
            finally:
                await worker.close()
            assert report["written_mb"] <= 32 and report["error"], report
            await _no_survivors(token)
            await _honest_still_verifies(settings, executor)

    _run(scenario())


# every file stays under the file-size rlimit; only the job folder's total gives the candidate away
_FILL_FOLDER = (
    "[__import__('pathlib').Path(f'fill_{i}.bin').write_bytes(b'\\1' * (8 << 20)) for i in range(64)]; "
    "__import__('time').sleep(600)"
)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_filling_the_job_folder_file_by_file_stops_at_its_quota(
    backend: str, backend_settings: Callable[[str], Settings]
) -> None:
    settings = backend_settings(backend).model_copy(update={"scratch_quota_bytes": 64 << 20})

    async def scenario() -> None:
        async with _executor(settings) as executor:
            verdict = await _verify(settings, executor, _FILL_FOLDER, timeout_s=90)
            assert verdict.outcome == Outcome.RUNTIME_ERROR, verdict.message
            assert "over its quota of 64 MiB" in verdict.message
            # the job folder is gone (the zygote keeps a folder of its own there)
            assert [p.name for p in settings.scratch_dir.iterdir() if p.name != "zygote"] == []
            await _honest_still_verifies(settings, executor)

    _run(scenario())


_WRITE_OUTSIDE = """
import json, sys
results = {}
for path in sys.argv[2:]:
    try:
        with open(path, "w") as out:
            out.write("pwned")
        results[path] = "written"
    except OSError as exc:
        results[path] = exc.strerror
print(json.dumps(results), flush=True)
"""


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "local",
            id="local",
            marks=pytest.mark.xfail(
                strict=True,
                reason="LocalExecutor has no file-system isolation: a worker writes wherever the service's "
                "user may (use executor=docker for that wall)",
            ),
        ),
        DOCKER,
    ],
)
def test_writing_outside_scratch_is_refused(
    backend: str, backend_settings: Callable[[str], Settings], tmp_path: Path
) -> None:
    settings = backend_settings(backend)
    targets = [
        str(tmp_path / "outside.txt"),  # a host folder beside the scratch root
        str(Path(__file__).resolve().parent / f"planted-{uuid.uuid4().hex}.py"),  # the code base
        "/etc/kernelwright-planted",
    ]

    async def scenario() -> None:
        async with _executor(settings) as executor:
            worker, _ = await _spawn_script(executor, settings, _WRITE_OUTSIDE, *targets)
            try:
                report = await worker.receive(60)
            finally:
                await worker.close()
            written = [p for p in targets if Path(p).exists()]
            for path in written:
                Path(path).unlink()
            assert not written, report
            assert all(v != "written" for v in report.values()), report
            await _honest_still_verifies(settings, executor)

    _run(scenario())


_CONNECT = """
import json, socket, sys
results = {}
for host, port in (("127.0.0.1", int(sys.argv[2])), ("1.1.1.1", 53)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        results[host] = "connected"
    except OSError as exc:
        results[host] = str(exc)
print(json.dumps(results), flush=True)
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_network_sockets_fail(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        # a listener on this host's loopback: reachable by any process that shares the host's network
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            async with _executor(settings) as executor:
                worker, _ = await _spawn_script(executor, settings, _CONNECT, str(port))
                try:
                    report = await worker.receive(60)
                finally:
                    await worker.close()
                assert worker.network_isolated
                assert "connected" not in report.values(), report
                await _honest_still_verifies(settings, executor)

    _run(scenario())


_KILL_PARENT = """
import json, os, signal, sys
decoy = int(sys.argv[2])
results = {"ppid": os.getppid()}
for name, pid in (("decoy", decoy), ("parent", os.getppid())):
    if pid <= 1:
        results[name] = "not visible"
        continue
    try:
        os.kill(pid, signal.SIGKILL)
        results[name] = "killed"
    except OSError as exc:
        results[name] = exc.strerror
results["environ_readable"] = []
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) != os.getpid():
        try:
            with open(f"/proc/{entry}/environ", "rb") as source:
                if b"KWDECOYSECRET" in source.read():
                    results["environ_readable"].append(int(entry))
        except OSError:
            pass
print(json.dumps(results), flush=True)
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_signalling_the_service_or_reading_its_environment_fails(
    backend: str, backend_settings: Callable[[str], Settings]
) -> None:
    settings = backend_settings(backend)
    # the decoy stands for the service: same user, started by it, a secret in its environment
    decoy = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, "DECOY": "KWDECOYSECRET"},
    )

    async def scenario() -> None:
        async with _executor(settings) as executor:
            worker, _ = await _spawn_script(executor, settings, _KILL_PARENT, str(decoy.pid))
            try:
                report = await worker.receive(60)
            finally:
                await worker.close()
            assert worker.pid_isolated
            assert report["decoy"] != "killed", report
            # the worker's parent is outside its PID namespace (local: invisible) or is the container's own
            # `timeout` wrapper (docker: killing it only ends the container); the service is never reachable
            assert report["parent"] != "killed" or backend == "docker", report
            assert decoy.poll() is None, "the worker killed a process of the service"
            assert report["environ_readable"] == [], report
            await _honest_still_verifies(settings, executor)

    try:
        _run(scenario())
    finally:
        decoy.kill()
        decoy.wait()


_DAEMON = """
import json, os, sys, time
child = os.fork()
if child == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        time.sleep(600)  # the daemon: a new session, no terminal, no parent
    os._exit(0)
os.waitpid(child, 0)  # the daemon exists once its parent has exited (a fixed sleep was racy under load)
time.sleep(0.2)
print(json.dumps({"daemonized": True}), flush=True)
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_a_double_forked_daemon_is_reaped(backend: str, backend_settings: Callable[[str], Settings]) -> None:
    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            worker, token = await _spawn_script(executor, settings, _DAEMON)
            try:
                assert (await worker.receive(60))["daemonized"]
                assert _survivors(token), "the daemon should be running before the worker is closed"
            finally:
                await worker.close()
            await _no_survivors(token)
            await _honest_still_verifies(settings, executor)

    _run(scenario())


_PROTOCOL_FLOOD = """
import os
chunk = b"y" * (1 << 20)
for _ in range(200):
    os.write(1, chunk)  # no newline: one endless "message" on the protocol stream
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_flooding_the_protocol_stream_is_capped(
    backend: str, backend_settings: Callable[[str], Settings]
) -> None:
    from kernelwright.errors import SandboxError

    settings = backend_settings(backend)

    async def scenario() -> None:
        async with _executor(settings) as executor:
            worker, token = await _spawn_script(executor, settings, _PROTOCOL_FLOOD)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                # capped either way: cut off past the line limit, or judged malformed when the stream ends
                with pytest.raises(SandboxError, match=r"over-long|malformed"):
                    await worker.receive(120)
            finally:
                await worker.close()
            grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            assert grown_mb < 200, f"the service grew by {grown_mb:.0f} MiB"
            await _no_survivors(token)
            await _honest_still_verifies(settings, executor)

    _run(scenario())


# --------------------------------------------------------------------------- the GPU verifier's pair

_PAIR_REFERENCE = """
import json, os, sys
from sandbox.runtime.limits import make_undumpable
undumpable = make_undumpable()
with open(f"/dev/shm/kw-pair-{sys.argv[1]}", "w") as handle:
    handle.write("pair")  # the IPC namespace's shared memory, as torch's CUDA IPC ref counters use it
print(json.dumps({"pid": os.getpid(), "undumpable": undumpable}), flush=True)
sys.stdin.readline()  # until told to end
"""

_PAIR_CANDIDATE = """
import ctypes, json, os, sys
asked = json.loads(sys.stdin.readline())  # on stdin: tokens in argv would show in this worker's own cmdline
peer_token, peer_pid, other_token, host_token = (asked[k] for k in ("peer", "pid", "other", "host"))
lines = []
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as source:
                lines.append(source.read())
        except OSError:
            pass
def opened(path):
    try:
        with open(path, "rb") as source:
            source.read(1)
        return "readable"
    except OSError as exc:
        return exc.strerror
libc = ctypes.CDLL(None, use_errno=True)
attached = libc.ptrace(16, peer_pid, None, None) == 0  # PTRACE_ATTACH
if attached:
    libc.ptrace(17, peer_pid, None, None)  # PTRACE_DETACH
report = {
    "sees_peer": any(peer_token.encode() in line for line in lines),
    "sees_other_worker": any(other_token.encode() in line for line in lines),
    "sees_host": any(host_token.encode() in line for line in lines),
    "peer_shm": os.path.exists(f"/dev/shm/kw-pair-{peer_token}"),
    "host_shm": os.path.exists(f"/dev/shm/kw-host-{host_token}"),
    "peer_environ": opened(f"/proc/{peer_pid}/environ"),
    "peer_mem": opened(f"/proc/{peer_pid}/mem"),
    "ptrace_attached": attached,
}
print(json.dumps(report), flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("backend", RAW_BACKENDS)
def test_a_gpu_pair_shares_namespaces_only_with_each_other(
    backend: str, backend_settings: Callable[[str], Settings]
) -> None:
    """The GPU verifier's candidate joins its reference's PID namespace (and, under Docker, its IPC
    namespace: CUDA IPC needs both): it sees the reference, nothing of the host or other workers, and
    under Docker their shared memory but not the host's, and it cannot trace the reference or read it
    through /proc (local workers may run as root, who can); when the reference ends, the candidate ends."""
    settings = backend_settings(backend)
    host_token = f"kwhost-{uuid.uuid4().hex}"
    host_shm = Path("/dev/shm") / f"kw-host-{host_token}"
    host_shm.write_text("host")
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", host_token])

    async def scenario() -> None:
        async with _executor(settings) as executor:
            other, other_token = await _spawn_script(executor, settings, "import sys; sys.stdin.readline()")
            reference, ref_token = await _spawn_script(executor, settings, _PAIR_REFERENCE)
            candidate: WorkerProcess | None = None
            try:
                started = await reference.receive(60)
                assert started["undumpable"] is True
                cwd = settings.scratch_dir / uuid.uuid4().hex
                cwd.mkdir(parents=True)
                spec = ProcessSpec(
                    [sys.executable, "-s", "-c", _PAIR_CANDIDATE, f"kwtoken-{uuid.uuid4().hex}"],
                    cwd,
                    worker_env(settings, cwd, None, gpu=False),
                    Limits(),
                    peer=reference,
                )
                candidate = await executor.spawn(spec)
                await candidate.send(
                    {"peer": ref_token, "pid": started["pid"], "other": other_token, "host": host_token}
                )
                report = await candidate.receive(60)
                if not (reference.pid_isolated and candidate.pid_isolated):
                    pytest.skip("this host cannot make PID namespaces")
                assert report["sees_peer"], report
                assert not (report["sees_other_worker"] or report["sees_host"]), report
                if backend == "docker":
                    assert report["peer_shm"] and not report["host_shm"], report
                if backend == "docker" or os.getuid() != 0:
                    assert report["peer_environ"] != "readable" and report["peer_mem"] != "readable", report
                    assert report["ptrace_attached"] is False, report
                await reference.close()  # the namespace's init is gone: the candidate dies with it
                with pytest.raises(WorkerExited):
                    await candidate.receive(60)
            finally:
                for worker in (candidate, reference, other):
                    if worker is not None:
                        await worker.close()
            await _no_survivors(ref_token)

    try:
        _run(scenario())
    finally:
        decoy.kill()
        decoy.wait()
        host_shm.unlink(missing_ok=True)
