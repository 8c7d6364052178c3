"""The static anti-hack policy: each rule fires on its pattern and stays quiet on honest code."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.domain import Severity, Target
from sandbox.hack_checks import HackPolicy, check_hacks

HEADER = """import torch
import triton
import triton.language as tl
from sandbox.runtime import load_ptx

@triton.jit
def k(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.maximum(tl.load(x_ptr + offs), 0.0))

"""
FORWARD = """
class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
{init}
    def forward(self, x):
        y = torch.empty_like(x)
        k[(1,)](x, y, x.numel(), BLOCK=256)
{body}
        return y
"""


def _module(body: str = "", *, prelude: str = "", init: str = "        pass", helper: str = "") -> str:
    indented = "\n".join("        " + line for line in body.splitlines())
    return prelude + HEADER + helper + FORWARD.format(init=init, body=indented)


def _errors(source: str, target: Target = Target.TRITON, policy: HackPolicy | None = None) -> set[str]:
    return {d.code for d in check_hacks(source, target, policy) if d.is_error}


def _codes(source: str) -> set[str]:
    return {d.code for d in check_hacks(source, Target.TRITON)}


@pytest.mark.parametrize(
    ("name", "target"),
    [("relu_cuda.py", Target.CUDA), ("relu_ptx.py", Target.PTX), ("softmax_triton.py", Target.TRITON)],
)
def test_example_kernels_are_clean(examples: Path, name: str, target: Target) -> None:
    assert check_hacks((examples / "kernels" / name).read_text(), target) == []


def test_honest_glue_is_clean() -> None:
    body = (
        "z = x.view(-1).reshape(x.shape).contiguous().permute(1, 0).transpose(0, 1)\n"
        "n, m = x.size(0), x.shape[1]\n"
        "s = x.stride(0) * x.dim() + x.numel() + (n + 255) // 256\n"
        "w = torch.empty((n, m), device=x.device, dtype=x.dtype)\n"
        "d = torch.cuda.current_device() if torch.cuda.is_available() else None\n"
        "import os\n"
        "os.environ['TRITON_PRINT_AUTOTUNING'] = '0'\n"
    )
    assert check_hacks(_module(body), Target.TRITON) == []


def test_syntax_errors_are_left_to_the_static_checks() -> None:
    assert check_hacks("def broken(:\n", Target.TRITON) == []


def test_diagnostics_are_located_and_hinted() -> None:
    found = check_hacks(_module("y = torch.relu(x)"), Target.TRITON)
    assert len(found) == 1
    diag = found[0]
    assert diag.code == "hack.torch_compute" and "torch.relu" in diag.message
    assert diag.severity == Severity.ERROR and diag.file == "candidate.py" and diag.hint
    assert diag.line is not None and "torch.relu" in _module("y = torch.relu(x)").splitlines()[diag.line - 1]


@pytest.mark.parametrize(
    ("snippet", "code"),
    [
        ("y = torch.relu(x)", "hack.torch_compute"),
        ("y = torch.matmul(x, x)", "hack.torch_compute"),
        ("y = x @ x", "hack.torch_compute"),
        ("y = x.sum(dim=0)", "hack.torch_compute"),
        ("y = torch.nn.functional.gelu(x)", "hack.torch_compute"),
        ("y = torch.linalg.norm(x)", "hack.torch_compute"),
        ("y = torch.ops.aten.relu(x)", "hack.torch_compute"),
        ("y = torch.compile(lambda t: t)(x)", "hack.torch_compute"),
        ("s = torch.cuda.Stream()", "hack.side_stream"),
        ("k[(1,)](x, y, 1, BLOCK=256, stream=7)", "hack.side_stream"),
        ("f = open('answers.txt').read()", "hack.file_io"),
        ("t = __import__('pathlib').Path('a').read_text()", "hack.file_io"),
        ("os.remove('x')", "hack.file_io"),
        ("t = torch.load('answers.pt')", "hack.serialization"),
        ("eval('1')", "hack.dynamic_code"),
        ("exec('1')", "hack.dynamic_code"),
        ("op = getattr(torch, 'rel' + 'u')", "hack.dynamic_code"),
        ("f = sys._getframe(1).f_locals", "hack.introspection"),
        ("m = sys.modules['__main__']", "hack.introspection"),
        ("g = k.__globals__", "hack.introspection"),
        ("e = self.__class__.__subclasses__()", "hack.introspection"),
        ("time.perf_counter = lambda: 0.0", "hack.monkeypatch"),
        ("torch.cuda.Event.elapsed_time = None", "hack.monkeypatch"),
        ("setattr(torch, 'allclose', None)", "hack.monkeypatch"),
        ("del torch.Tensor.__eq__", "hack.monkeypatch"),
        ("triton.knobs.runtime.launch_enter_hook(None)", "hack.monkeypatch"),
        ("sandbox.runtime.launch.launch_count[0] += 1", "hack.monkeypatch"),
        ("self.cache = y", "hack.state_in_forward"),
        ("self.calls += 1", "hack.state_in_forward"),
        ("self.seen[id(x)] = y", "hack.state_in_forward"),
        ("self.outputs.append(y)", "hack.state_in_forward"),
        ("setattr(self, 'last', y)", "hack.state_in_forward"),
        ("t0 = time.perf_counter()", "hack.timer"),
        ("z = torch.empty_like(x, device='meta')", "hack.tensor_subclass"),
    ],
)
def test_rule_fires(snippet: str, code: str) -> None:
    prelude = "import os\nimport sys\nimport time\nimport sandbox.runtime.launch\n"
    assert code in _errors(_module(snippet, prelude=prelude)), snippet


@pytest.mark.parametrize(
    ("prelude", "code"),
    [
        ("import threading\n", "hack.concurrency"),
        ("from concurrent.futures import ThreadPoolExecutor\n", "hack.concurrency"),
        ("import multiprocessing as mp\n", "hack.concurrency"),
        ("import subprocess\n", "hack.process"),
        ("from os import system\n", "hack.process"),
        ("import socket\n", "hack.network"),
        ("import urllib.request\n", "hack.network"),
        ("import requests\n", "hack.network"),
        ("import gc\n", "hack.introspection"),
        ("import inspect\n", "hack.introspection"),
        ("import importlib\n", "hack.dynamic_code"),
        ("import pickle\n", "hack.serialization"),
        ("import builtins\n", "hack.monkeypatch"),
        ("import shutil\n", "hack.file_io"),
        ("from torch.utils._python_dispatch import TorchDispatchMode\n", "hack.torch_internals"),
        ("import torch.library\n", "hack.torch_internals"),
        ("from ctypes import cast\n", "hack.ctypes"),
        ("import ctypes.util\n", "hack.ctypes"),
        ("from functools import lru_cache\n", "hack.cache_decorator"),
        ("from torch.cuda import Stream\n", "hack.side_stream"),
    ],
)
def test_banned_imports(prelude: str, code: str) -> None:
    assert code in _errors(_module(prelude=prelude)), prelude


def test_ctypes_only_as_scalar_constructors() -> None:
    ok = _module(
        "n = ctypes.c_int64(x.numel())\nm = c_uint32(3).value",
        prelude="import ctypes\nfrom ctypes import c_uint32\n",
    )
    assert "hack.ctypes" not in _errors(ok)
    for bad in (
        "p = ctypes.cast(0, ctypes.c_void_p)",
        "ctypes.memmove(0, 0, 4)",
        "v = ctypes.c_int64.from_address(x.data_ptr())",
        "lib = ctypes.CDLL(None)",
        "c = ctypes",
    ):
        assert "hack.ctypes" in _errors(_module(bad, prelude="import ctypes\n")), bad
    assert "hack.ctypes" in _errors(
        _module("v = c_int64.from_address(0)", prelude="from ctypes import c_int64\n")
    )


def test_try_except_fallbacks() -> None:
    fallback = "try:\n    k[(1,)](x, y)\nexcept RuntimeError:\n    y = torch.relu(x)"
    assert {"hack.try_fallback", "hack.torch_compute"} <= _errors(_module(fallback))
    bare = "try:\n    k[(1,)](x, y)\nexcept:\n    pass"
    assert "hack.bare_except" in _errors(_module(bare))
    narrow = "try:\n    k[(1,)](x, y)\nexcept ValueError:\n    raise"
    assert _errors(_module(narrow)) == set()


def test_cache_decorators() -> None:
    helper = (
        "@functools.lru_cache(maxsize=None)\ndef f(t):\n    return t\n\n"
        "@functools.cache\ndef g(t):\n    return t\n"
    )
    found = check_hacks(_module(helper=helper, prelude="import functools\n"), Target.TRITON)
    assert len([d for d in found if d.code == "hack.cache_decorator"]) == 2


def test_compute_is_found_through_helpers_methods_and_layers() -> None:
    helper = "def helper(t):\n    return torch.relu(t)\n\n"
    assert "hack.torch_compute" in _errors(_module("y = helper(x)", helper=helper))
    unused = "def unused(t):\n    return torch.relu(t)\n\n"
    assert _errors(_module(helper=unused)) == set()  # not reachable from forward
    layer = _module("y = self.act(x)", init="        self.act = torch.nn.ReLU()")
    assert "hack.torch_compute" in _errors(layer)
    holder = _module("y = y + 0 * self.lin.weight.sum()", init="        self.lin = torch.nn.Linear(4, 4)")
    assert "hack.torch_compute" in _errors(holder)  # .sum() in torch
    weights_only = _module(
        "w = self.lin.weight.contiguous()", init="        self.lin = torch.nn.Linear(4, 4)"
    )
    assert _errors(weights_only) == set()  # holding weights in a layer for state_dict is fine
    reference = "class Model(torch.nn.Module):\n    def forward(self, x):\n        return torch.relu(x)\n\n"
    delegate = _module("y = self.ref(x)", init="        self.ref = Model()", helper=reference)
    assert "hack.torch_compute" in _errors(delegate)


def test_aliased_imports_are_resolved() -> None:
    assert "hack.torch_compute" in _errors(
        _module("y = F.relu(x)", prelude="import torch.nn.functional as F\n")
    )
    assert "hack.torch_compute" in _errors(_module("y = relu(x)", prelude="from torch import relu\n"))
    assert "hack.monkeypatch" in _errors(
        _module("pc = 1", prelude="from time import perf_counter\nimport time as t\nt.perf_counter = None\n")
    )


def test_kernel_handles_may_be_cached_on_self() -> None:
    lazy = (
        "if self.kernel is None:\n    self.kernel = load_ptx(PTX).get_function('relu')\n"
        "self.kernel(grid=1, block=32, args=(x, y))"
    )
    assert _errors(_module(lazy, init="        self.kernel = None")) == set()


def test_warnings_do_not_block() -> None:
    found = check_hacks(_module("z = torch.zeros_like(x)\nw = x.to(torch.float16)\nv = x * 2"), Target.TRITON)
    assert {d.code for d in found} == {"hack.torch_op", "hack.tensor_arithmetic"}
    assert all(d.severity == Severity.WARNING for d in found)


def test_no_launch_is_a_warning() -> None:
    source = _module().replace("        k[(1,)](x, y, x.numel(), BLOCK=256)\n", "")
    found = check_hacks(source, Target.TRITON)
    assert [(d.code, d.severity) for d in found] == [("hack.no_launch", Severity.WARNING)]


def test_policy_is_configurable() -> None:
    source = _module("y = torch.relu(x)")
    assert _errors(source, policy=HackPolicy(require_kernel=False)) == set()
    relaxed = HackPolicy(allowed_torch=HackPolicy().allowed_torch | {"relu"})
    assert _errors(source, policy=relaxed) == set()
    strict = HackPolicy(compute_torch=HackPolicy().compute_torch | {"empty_like"}, allowed_torch=frozenset())
    assert "hack.torch_compute" in _errors(_module(), policy=strict)
