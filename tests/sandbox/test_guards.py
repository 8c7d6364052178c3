"""Runtime guards in-process: patched timers, live threads, launch counting, output checks."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from sandbox.runtime import compare, launch  # imported before arming, as in the worker
from sandbox.runtime.guards import RuntimeGuard, check_output

KERNEL = """import torch, triton
import triton.language as tl

@triton.jit
def double(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2, mask=mask)
"""


@pytest.fixture
def guard() -> Iterator[RuntimeGuard]:
    armed = RuntimeGuard.arm()
    yield armed
    armed.disarm()


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"guard_test_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_clean_run_has_no_violations(guard: RuntimeGuard) -> None:
    assert guard.violations() == []
    assert guard.finding() is None


def test_patched_timer_is_reported(guard: RuntimeGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)
    monkeypatch.setattr(torch.cuda.Event, "elapsed_time", lambda self, end: 0.001)
    found = " ".join(guard.violations())
    assert "time.perf_counter" in found and "torch.cuda.Event.elapsed_time" in found


def test_patched_checker_functions_are_reported(guard: RuntimeGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda self, other: True)
    monkeypatch.setattr(compare, "flatten_outputs", lambda value: None)
    found = " ".join(guard.violations())
    assert "torch.allclose" in found and "torch.Tensor.__eq__" in found and "flatten_outputs" in found


def test_new_live_thread_is_reported(guard: RuntimeGuard) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="sneaky", daemon=True)
    worker.start()
    try:
        assert any("sneaky" in v for v in guard.violations())
    finally:
        stop.set()
        worker.join()
    assert guard.violations() == []


def test_guard_cannot_be_shadowed_per_instance(guard: RuntimeGuard) -> None:
    with pytest.raises(AttributeError):
        guard.finding = lambda: None  # type: ignore[method-assign]


def test_launch_api_counter() -> None:
    guard = RuntimeGuard.arm()
    before = guard.kernel_launches("cuda")
    launch.launch_count[0] += 1  # what Kernel.__call__ does after a successful launch
    assert guard.kernel_launches("ptx") == before + 1
    assert guard.kernel_launches("triton") == 0
    assert guard.kernel_launches() == before + 1
    assert guard.violations() == []
    real = launch.launch_count
    try:
        launch.launch_count = [10**9]  # a candidate faking launches by replacing the counter
        assert any("launch_count was replaced" in v for v in guard.violations())
    finally:
        launch.launch_count = real


def test_silent_forward_is_reported(guard: RuntimeGuard) -> None:
    result = guard.call(lambda x: x * 2, [torch.ones(3)], "triton")
    assert torch.equal(result, torch.full((3,), 2.0))
    message = guard.finding()
    assert message is not None and "never ran" in message and "call(s) 1 of 1" in message


def test_other_targets_are_not_held_to_launch_counts(guard: RuntimeGuard) -> None:
    guard.call(lambda x: x, [torch.ones(3)], "tt-metal")
    assert guard.finding() is None


def test_triton_launches_are_counted_under_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    path = tmp_path / "kernel.py"
    path.write_text(KERNEL)
    guard = RuntimeGuard.arm(KERNEL)
    try:
        module = _import(path)
        x = torch.arange(300, dtype=torch.float32)
        y = torch.empty_like(x)

        def forward(t: torch.Tensor) -> torch.Tensor:
            module.double[(3,)](t, y, t.numel(), BLOCK=128)
            return y

        api_before = guard.kernel_launches("ptx")
        out = guard.call(forward, [x], "triton")
        assert torch.equal(out, 2 * x)
        assert guard.kernel_launches("triton") == 1 and guard.kernel_launches("ptx") == api_before
        assert guard.finding() is None
        import triton

        triton.knobs.runtime.launch_enter_hook(None)  # a fake "launch": not counted here
        assert guard.kernel_launches("triton") == 1
    finally:
        guard.disarm()
    from triton.runtime.interpreter import GridExecutor

    assert GridExecutor.__call__.__name__ == "__call__"  # disarm restored Triton's own method


def test_removed_counter_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    guard = RuntimeGuard.arm(KERNEL)
    from triton.runtime.interpreter import GridExecutor

    try:
        counted = GridExecutor.__call__
        monkeypatch.setattr(GridExecutor, "__call__", lambda self, *a, **k: None)
        assert any("launch counter was removed" in v for v in guard.violations())
        monkeypatch.setattr(GridExecutor, "__call__", counted)
    finally:
        guard.disarm()


def test_check_output_accepts_plain_tensors() -> None:
    x = torch.ones(2, 3)
    assert check_output(x) is None
    assert check_output((x, [x.t()])) is None
    assert check_output(None) is None  # not a tensor at all: the comparison says wrong_shape
    assert check_output(3) is None


class _Marked(torch.Tensor):
    pass


class _Imitation:
    @classmethod
    def __torch_function__(
        cls, func: object, types: object, args: object = (), kwargs: object = None
    ) -> None:
        return None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (torch.ones(2).as_subclass(_Marked), "subclass"),
        (torch.nn.Parameter(torch.ones(2)), "subclass"),
        (torch.empty(2, device="meta"), "meta"),
        (torch.ones(2, 2).to_sparse(), "dense"),
        ((torch.ones(2), torch.empty(2, device="meta")), "output 1"),
        (_Imitation(), "imitates"),
    ],
    ids=["subclass", "parameter", "meta", "sparse", "tuple", "imitation"],
)
def test_check_output_rejects_fakes(value: object, expected: str) -> None:
    message = check_output(value)
    assert message is not None and expected in message
