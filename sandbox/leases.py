"""GPU leases: one candidate per GPU at a time, and the slot back in the pool on every path.

A `Slot` is one place a candidate can run: a GPU (its `CUDA_VISIBLE_DEVICES` entry) or, where no GPU is
leased, a CPU slot. GPUs are found without initialising CUDA in the service process: the settings'
`gpus` list wins, then this process's `CUDA_VISIBLE_DEVICES`, then `nvidia-smi -L`. A lease hands the
slot to one evaluation; its worker processes get `slot.env`, so they see that GPU only.

`Leases` is a small asyncio pool. Release is synchronous and runs in a `finally`, so a lease comes back
when its holder returns, raises, times out or is cancelled, even while it was still queued for a slot.
A slot whose GPU turned out broken is `retire`d: it never comes back, and once none is left every
waiter gets a `SandboxError` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from kernelwright.errors import ConfigError, SandboxError
from kernelwright.settings import Settings

__all__ = ["Leases", "Slot", "discover_slots", "parse_nvidia_smi_list"]

_SMI_TIMEOUT_S = 20
_GPU_LINE = re.compile(r"^GPU (\d+):")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)]+)\)")


@dataclass(frozen=True)
class Slot:
    """One place to run a candidate. `device` is a CUDA_VISIBLE_DEVICES entry; None for a CPU slot."""

    index: int
    device: str | None = None

    @property
    def name(self) -> str:
        return f"gpu{self.device}" if self.device is not None else f"cpu{self.index}"

    @property
    def env(self) -> dict[str, str]:
        """Variables a worker on this slot must get (a CPU slot adds none: no GPU is being assigned)."""
        return {} if self.device is None else {"CUDA_VISIBLE_DEVICES": self.device}


def parse_nvidia_smi_list(text: str) -> list[str]:
    """Device entries from `nvidia-smi -L`: GPU indices, or the MIG instances' UUIDs where a GPU has them."""
    devices: list[str] = []
    current: str | None = None
    migs: list[str] = []
    for line in text.splitlines():
        if gpu := _GPU_LINE.match(line):
            if current is not None:
                devices.extend(migs or [current])
            current, migs = gpu.group(1), []
        elif (mig := _MIG_LINE.match(line)) and current is not None:
            migs.append(mig.group(1))
    if current is not None:
        devices.extend(migs or [current])
    return devices


def _nvidia_smi_devices() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "-L"],
            capture_output=True,
            text=True,
            timeout=_SMI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi_list(done.stdout) if done.returncode == 0 else []


def discover_slots(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Slot]:
    """The slots to lease: declared GPUs, else visible ones, else `settings.cpu_slots` CPU slots.

    `environ` defaults to this process's environment; only `CUDA_VISIBLE_DEVICES` is read from it (it is
    CUDA's variable, not a kernelwright setting). An empty `CUDA_VISIBLE_DEVICES` means no GPU.
    """
    env = os.environ if environ is None else environ
    if settings.gpus is not None:
        if len(set(settings.gpus)) != len(settings.gpus) or any(g < 0 for g in settings.gpus):
            raise ConfigError(
                f"KERNELWRIGHT_GPUS={settings.gpus} must list distinct GPU indices >= 0, e.g. [0,1]"
            )
        devices = [str(g) for g in settings.gpus]
    elif "CUDA_VISIBLE_DEVICES" in env:
        devices = [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        # CUDA stops at the first invalid entry (-1 is the usual "none"); so do we
        devices = devices[: next((i for i, d in enumerate(devices) if d.startswith("-")), len(devices))]
    else:
        devices = _nvidia_smi_devices()
    if devices:
        return [Slot(index, device) for index, device in enumerate(devices)]
    return [Slot(index) for index in range(settings.cpu_slots)]


class Leases:
    """An asyncio pool of slots: `async with leases.lease() as slot:` holds one exclusively."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        if not slots:
            raise ConfigError("a lease pool needs at least one slot (set KERNELWRIGHT_CPU_SLOTS >= 1)")
        self.slots = tuple(slots)
        self._free: deque[Slot] = deque(slots)
        self._retired: set[Slot] = set()
        self._waiters: deque[asyncio.Future[Slot]] = deque()

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def healthy(self) -> int:
        return len(self.slots) - len(self._retired)

    async def acquire(self) -> Slot:
        """A free slot, waiting for one if all are taken. Raises SandboxError when every slot is retired."""
        if self._free:
            return self._free.popleft()
        self._raise_if_exhausted()
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # handed a slot in the same step as being cancelled: pass it on rather than lose it
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def release(self, slot: Slot) -> None:
        """Give `slot` back (synchronous, so it cannot be interrupted): to the next waiter, or the pool."""
        if slot in self._retired:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._free.append(slot)

    def retire(self, slot: Slot) -> None:
        """Take `slot` out of the pool for good (its GPU is broken); the holder's release is then a no-op."""
        self._retired.add(slot)
        if slot in self._free:
            self._free.remove(slot)
        if self.healthy == 0:
            error = self._exhausted()
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(error)

    def _exhausted(self) -> SandboxError:
        names = ", ".join(s.name for s in self.slots)
        return SandboxError(
            f"no healthy slot left: every slot ({names}) failed its health check; "
            "check the GPUs (nvidia-smi) and restart the service"
        )

    def _raise_if_exhausted(self) -> None:
        if self.healthy == 0:
            raise self._exhausted()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Slot]:
        slot = await self.acquire()
        try:
            yield slot
        finally:
            self.release(slot)
