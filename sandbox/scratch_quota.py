"""A cap on what one verification may leave in its job folder, enforced while it runs.

The file-size rlimit bounds each file a worker writes, and Docker's tmpfs bounds `/tmp`, but the job
folder itself is plain host disk (bind-mounted under Docker): a candidate writing many files just under
the rlimit, or millions of empty ones, would fill the service's disk. A watchdog therefore measures the
folder a few times a second and reports the first time it exceeds its byte or entry cap; the verifier
then kills both workers and says why.

Bytes are counted as allocated blocks (what the disk loses), so a sparse file costs what it really uses.
Symbolic links are counted as entries and never followed.
"""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ScratchUsage", "scratch_usage", "watch_scratch"]


@dataclass(frozen=True, slots=True)
class ScratchUsage:
    bytes: int
    entries: int

    def describe(self) -> str:
        return f"{self.bytes / 1024**2:.0f} MiB in {self.entries} entries"


def scratch_usage(root: Path, *, stop_after_entries: int | None = None) -> ScratchUsage:
    """Allocated bytes and entries under `root`; stops counting once past `stop_after_entries`."""
    total = entries = 0
    stack = [str(root)]
    while stack:
        try:
            listing = os.scandir(stack.pop())
        except OSError:  # removed under us, or made unreadable by its owner: nothing to count there
            continue
        with listing:
            for entry in listing:
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += info.st_blocks * 512
                if stat.S_ISDIR(info.st_mode):
                    stack.append(entry.path)
                if stop_after_entries is not None and entries > stop_after_entries:
                    return ScratchUsage(total, entries)
    return ScratchUsage(total, entries)


async def watch_scratch(
    root: Path, *, max_bytes: int, max_entries: int, interval_s: float = 0.25
) -> ScratchUsage:
    """Returns the usage the first time it exceeds a cap; runs until cancelled while it does not."""
    while True:
        usage = await asyncio.to_thread(scratch_usage, root, stop_after_entries=max_entries)
        if usage.bytes > max_bytes or usage.entries > max_entries:
            return usage
        await asyncio.sleep(interval_s)
