"""Resource limits and network isolation for a worker process (standard library only).

Shared by the local executor (between fork and exec) and the zygote (in each forked child).
"""

from __future__ import annotations

import ctypes
import resource

__all__ = ["CLONE_NEWNET", "apply_limits", "new_network_namespace"]

CLONE_NEWNET = 0x40000000


def new_network_namespace() -> bool:
    """Move this process into a fresh network namespace (no interfaces but a down loopback)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.unshare(CLONE_NEWNET) == 0)


def apply_limits(
    *,
    cpu_seconds: int | None,
    address_space_bytes: int | None,
    open_files: int,
    file_size_bytes: int,
    isolate_network: bool,
) -> bool:
    """Apply rlimits (and a new network namespace when asked); True when the network is isolated."""
    if cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if address_space_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return new_network_namespace() if isolate_network else False
