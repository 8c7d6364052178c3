"""Resource limits and isolation for a worker process (standard library only).

Shared by the local executor (between fork and exec) and the zygote (in each forked child).

Three mechanisms close holes that rlimits leave open:
- a pids cgroup (`/sys/fs/cgroup/pids/kernelwright/w<pid>`) caps the number of tasks, because
  RLIMIT_NPROC counts every process of the user and is not enforced at all for root; the service kills
  every member of the group when the worker ends, so a double-forked daemon that left the session dies too;
- a fresh PID namespace makes the worker PID 1 of its own namespace: it cannot see or signal the
  service, and when it dies the kernel kills everything it started; where a mount namespace can be made
  too, /proc is remounted so other processes' environments are hidden. Legacy CUDA IPC, which the GPU
  verifier uses between the reference and candidate workers, does not cross PID namespaces, so the GPU
  candidate joins its reference's namespace (and its /proc) instead of making one: the pair shares a
  namespace with nothing else;
- a fresh network namespace, where the OS allows one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import time
from pathlib import Path

__all__ = [
    "CLONE_NEWNET",
    "CLONE_NEWPID",
    "apply_limits",
    "kill_worker_tree",
    "limit_processes",
    "make_undumpable",
    "new_network_namespace",
    "pids_cgroup",
    "remove_empty_cgroups",
]

CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
_CGROUP_V1 = Path("/sys/fs/cgroup/pids")
_CGROUP_V2 = Path("/sys/fs/cgroup")


_PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """Forbid other processes of this user (the candidate beside the reference) to ptrace this one or
    open its /proc memory, environment and descriptors; True when the kernel took it."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)


def new_network_namespace() -> bool:
    """Move this process into a fresh network namespace (no interfaces but a down loopback)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.unshare(CLONE_NEWNET) == 0)


def _cgroup_root() -> Path | None:
    if (_CGROUP_V1 / "cgroup.procs").exists():
        return _CGROUP_V1 / "kernelwright"
    with contextlib.suppress(OSError):
        if "pids" in (_CGROUP_V2 / "cgroup.controllers").read_text().split():
            return _CGROUP_V2 / "kernelwright"
    return None


def pids_cgroup(pid: int) -> Path | None:
    """The pids cgroup that the worker started as `pid` put itself in (None: no cgroup support)."""
    root = _cgroup_root()
    return None if root is None else root / f"w{pid}"


def limit_processes(max_processes: int) -> bool:
    """Cap the tasks of this process and its descendants; True when the cap is enforced.

    A pids cgroup where one can be created (root, or a delegated cgroup); otherwise RLIMIT_NPROC, which
    the kernel ignores for root and which counts all processes of the user, so it is a weaker fallback.
    """
    group = pids_cgroup(os.getpid())
    if group is not None:
        try:
            group.parent.mkdir(exist_ok=True)
            if group.parent.parent == _CGROUP_V2:  # v2: the controller must be enabled for the children
                (group.parent / "cgroup.subtree_control").write_text("+pids")
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(str(max_processes))
            (group / "cgroup.procs").write_text(str(os.getpid()))
            return True
        except OSError:
            pass
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    return os.getuid() != 0


def _relay_exit(child: int) -> None:
    """The process outside the new PID namespace: hold no file, wait for the namespace's init, and end
    the same way it ended (a signal death is re-raised), so the service sees the worker's own status."""
    os.closerange(0, 65536)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


def _new_pid_namespace() -> bool:
    """Fork into a fresh PID namespace: this call returns in the child (PID 1 there); the parent stays
    behind as a relay that exits with the child's status and never returns."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        return False
    child = os.fork()
    if child != 0:
        _relay_exit(child)
    _private_proc(libc)
    return True


def _join_pid_namespace(relay: int, wait_s: float = 2.0) -> bool:
    """Fork into the PID namespace that worker `relay` made (see `_new_pid_namespace`), and into its
    mount namespace for the /proc that shows only that namespace. Returns in the child; the parent stays
    behind as a relay. False, changing nothing, when the namespace cannot be opened or entered."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        pid_fd = os.open(f"/proc/{relay}/ns/pid_for_children", os.O_RDONLY)
    except OSError:
        return False
    mnt_fd: int | None = None
    deadline = time.monotonic() + wait_s
    own_mounts = os.stat("/proc/self/ns/mnt").st_ino
    while mnt_fd is None and time.monotonic() < deadline:
        for init in _children(relay):  # the peer itself, once it has its private /proc
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{init}/ns/mnt").st_ino != own_mounts:
                    mnt_fd = os.open(f"/proc/{init}/ns/mnt", os.O_RDONLY)
        if mnt_fd is None:
            time.sleep(0.01)
    if libc.setns(pid_fd, CLONE_NEWPID) != 0:
        for fd in (pid_fd, mnt_fd):
            if fd is not None:
                os.close(fd)
        return False
    child = os.fork()
    if child != 0:
        _relay_exit(child)
    if mnt_fd is not None:
        libc.setns(mnt_fd, CLONE_NEWNS)
        os.close(mnt_fd)
    os.close(pid_fd)
    return True


def _private_proc(libc: ctypes.CDLL) -> bool:
    """Mount a /proc that shows only this PID namespace (needs a mount namespace: root), so the worker
    cannot read other processes' environments or command lines, the service's secrets included."""
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    return bool(libc.mount(b"proc", b"/proc", b"proc", flags, None) == 0)


def apply_limits(
    *,
    cpu_seconds: int | None,
    address_space_bytes: int | None,
    open_files: int,
    file_size_bytes: int,
    isolate_network: bool,
    max_processes: int | None = 1024,
    isolate_pids: bool = False,
    join_pids_of: int | None = None,
) -> bool:
    """Apply rlimits, the task cap and the namespaces asked for; True when the network is isolated.

    `join_pids_of`: the relay of a worker whose PID namespace to join (`isolate_pids` then ignored)."""
    if max_processes is not None:
        limit_processes(max_processes)
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if address_space_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    isolated = new_network_namespace() if isolate_network else False
    if join_pids_of is not None:
        _join_pid_namespace(join_pids_of)
    elif isolate_pids:
        _new_pid_namespace()
    return isolated


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError, ValueError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def kill_worker_tree(pid: int, *, alive: bool = True, wait_s: float = 2.0) -> None:
    """SIGKILL the worker started as `pid` and everything it started, wherever it went.

    The worker's process group covers the ordinary case; the children of `pid` include the init of its
    PID namespace (whose death takes the namespace with it); the pids cgroup catches processes that
    changed session, and is removed once empty (waiting up to `wait_s`). `alive=False` (the worker was
    already reaped, its pid may be reused) only sweeps the cgroup. Safe to call more than once.
    """
    if alive:
        for child in _children(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    group = pids_cgroup(pid)
    if group is None or not group.exists():
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            members = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            members = []
        for member in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signal.SIGKILL)
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
        time.sleep(0.01)


def remove_empty_cgroups() -> int:
    """Remove worker cgroups left empty (a service that died before cleaning up); busy ones stay."""
    root = _cgroup_root()
    removed = 0
    if root is None or not root.is_dir():
        return 0
    for group in root.glob("w*"):
        with contextlib.suppress(OSError):
            group.rmdir()
            removed += 1
    return removed
