"""GPU leases: discovery without CUDA, one holder per slot, and release on every path."""

from __future__ import annotations

import asyncio

import pytest

from kernelwright.errors import ConfigError, SandboxError
from kernelwright.settings import Settings
from sandbox.leases import Leases, Slot, discover_slots, parse_nvidia_smi_list

SMI_TWO_GPUS = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1c2d3e4f-0000-0000-0000-000000000000)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-5a6b7c8d-0000-0000-0000-000000000000)
"""
SMI_MIG = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)
  MIG 3g.20gb     Device  0: (UUID: MIG-1111)
  MIG 3g.20gb     Device  1: (UUID: MIG-2222)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb)
"""


def test_parse_nvidia_smi_list() -> None:
    assert parse_nvidia_smi_list(SMI_TWO_GPUS) == ["0", "1"]
    assert parse_nvidia_smi_list(SMI_MIG) == ["MIG-1111", "MIG-2222", "1"]
    assert parse_nvidia_smi_list("No devices were found\n") == []


def test_declared_gpus_win(settings: Settings) -> None:
    declared = settings.model_copy(update={"gpus": [2, 3]})
    slots = discover_slots(declared, environ={"CUDA_VISIBLE_DEVICES": "0"})
    assert slots == [Slot(0, "2"), Slot(1, "3")]
    assert slots[1].env == {"CUDA_VISIBLE_DEVICES": "3"} and slots[1].name == "gpu3"


def test_cuda_visible_devices_then_cpu_slots(settings: Settings) -> None:
    assert [s.device for s in discover_slots(settings, environ={"CUDA_VISIBLE_DEVICES": "1, GPU-x"})] == [
        "1",
        "GPU-x",
    ]
    assert [s.device for s in discover_slots(settings, environ={"CUDA_VISIBLE_DEVICES": "0,-1,2"})] == ["0"]
    cpu = discover_slots(settings.model_copy(update={"cpu_slots": 3}), environ={"CUDA_VISIBLE_DEVICES": ""})
    assert cpu == [Slot(0), Slot(1), Slot(2)] and cpu[0].env == {} and cpu[2].name == "cpu2"


def test_bad_declarations_are_config_errors(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="distinct GPU indices"):
        discover_slots(settings.model_copy(update={"gpus": [0, 0]}))
    with pytest.raises(ConfigError, match="at least one slot"):
        Leases([])


def test_one_holder_per_slot() -> None:
    async def scenario() -> tuple[int, int]:
        leases = Leases([Slot(0, "0"), Slot(1, "1")])
        holding: set[Slot] = set()
        most = 0

        async def job() -> None:
            nonlocal most
            async with leases.lease() as slot:
                assert slot not in holding, "a slot was leased twice at once"
                holding.add(slot)
                most = max(most, len(holding))
                await asyncio.sleep(0.01)
                holding.discard(slot)

        await asyncio.gather(*(job() for _ in range(12)))
        return most, leases.free

    most, free = asyncio.run(scenario())
    assert most == 2 and free == 2


def test_released_on_crash_timeout_and_cancel() -> None:
    async def scenario() -> list[int]:
        leases = Leases([Slot(0)])
        free_after: list[int] = []

        async def crash() -> None:
            async with leases.lease():
                raise RuntimeError("candidate blew up")

        with pytest.raises(RuntimeError):
            await crash()
        free_after.append(leases.free)

        async def hang() -> None:
            async with leases.lease():
                await asyncio.sleep(3600)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(hang(), 0.05)
        free_after.append(leases.free)

        holder = asyncio.create_task(hang())
        await asyncio.sleep(0.01)
        queued = asyncio.create_task(hang())  # waits for the slot the holder has
        await asyncio.sleep(0.01)
        queued.cancel()
        holder.cancel()
        await asyncio.gather(holder, queued, return_exceptions=True)
        free_after.append(leases.free)
        return free_after

    assert asyncio.run(scenario()) == [1, 1, 1]


def test_slot_handed_over_while_cancelled_is_not_lost() -> None:
    async def scenario() -> int:
        leases = Leases([Slot(0)])
        slot = await leases.acquire()
        waiter = asyncio.create_task(leases.acquire())
        await asyncio.sleep(0)
        leases.release(slot)  # hands the slot to the waiter...
        waiter.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return leases.free

    assert asyncio.run(scenario()) == 1


def test_retired_slots_never_return_and_waiters_fail_when_none_is_left() -> None:
    async def scenario() -> tuple[int, str]:
        leases = Leases([Slot(0, "0"), Slot(1, "1")])
        first = await leases.acquire()
        second = await leases.acquire()
        waiter = asyncio.create_task(leases.acquire())
        await asyncio.sleep(0)
        leases.retire(first)
        leases.release(first)
        leases.retire(second)
        with pytest.raises(SandboxError) as failed:
            await waiter
        return leases.free, str(failed.value)

    free, message = asyncio.run(scenario())
    assert free == 0 and "no healthy slot left" in message and "gpu0, gpu1" in message
