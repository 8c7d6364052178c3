"""Turning Python launch arguments into what `cuLaunchKernel` takes, with errors a model can act on.

Kept apart from the driver binding so that it can be tested on machines with no GPU: nothing here
touches CUDA. A tensor becomes its device pointer, a Python int a 32-bit `int`, a float a 32-bit
`float`, and ctypes scalars pass unchanged (the way to ask for 64-bit or unsigned parameters).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Sequence
from typing import Any, TypeAlias

import torch

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "CArg",
    "Dim3",
    "check_block",
    "check_grid",
    "check_param_sizes",
    "marshal_arg",
    "marshal_args",
    "normalize_dim3",
]

Dim3: TypeAlias = tuple[int, int, int]
CArg: TypeAlias = "ctypes._SimpleCData[Any]"

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
_MAX_GRID = (2**31 - 1, 65535, 65535)
_MAX_BLOCK = (1024, 1024, 64)
_MAX_THREADS_PER_BLOCK = 1024

_NUMPY_TO_CTYPES: dict[str, type[CArg]] = {
    "int8": ctypes.c_int8,
    "int16": ctypes.c_int16,
    "int32": ctypes.c_int32,
    "int64": ctypes.c_int64,
    "uint8": ctypes.c_uint8,
    "uint16": ctypes.c_uint16,
    "uint32": ctypes.c_uint32,
    "uint64": ctypes.c_uint64,
    "float32": ctypes.c_float,
    "float64": ctypes.c_double,
    "bool": ctypes.c_bool,
}


def normalize_dim3(value: int | Sequence[int], what: str) -> Dim3:
    """`4` -> `(4, 1, 1)`, `(4, 2)` -> `(4, 2, 1)`; every entry a positive int."""
    # Fast paths first: this runs on every launch, and launch overhead counts in timings.
    if type(value) is int and value >= 1:
        return (value, 1, 1)
    if type(value) is tuple and len(value) == 3 and all(type(v) is int and v >= 1 for v in value):
        return (value[0], value[1], value[2])
    items: list[object]
    if isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = list(value)
    else:
        raise TypeError(f"{what} must be an int or a tuple of 1 to 3 ints, not {type(value).__name__}")
    if not 1 <= len(items) <= 3:
        raise ValueError(f"{what} must have 1 to 3 dimensions, got {len(items)}: {tuple(items)!r}")
    dims: list[int] = []
    for axis, item in zip("xyz", items, strict=False):
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(
                f"{what}.{axis} must be an int, not {type(item).__name__} ({item!r}); "
                "use integer division (//) when computing launch sizes"
            )
        if item < 1:
            raise ValueError(f"{what}.{axis} must be >= 1, got {item} (an empty launch is not allowed)")
        dims.append(item)
    while len(dims) < 3:
        dims.append(1)
    return (dims[0], dims[1], dims[2])


def check_grid(grid: Dim3) -> None:
    """Reject grids the hardware cannot launch, before the driver answers a vague INVALID_VALUE."""
    for axis, size, limit in zip("xyz", grid, _MAX_GRID, strict=True):
        if size > limit:
            raise ValueError(f"grid.{axis} = {size} exceeds the CUDA limit of {limit}")


def check_block(block: Dim3) -> None:
    """Reject blocks over the per-dimension limits or over 1024 threads in all."""
    for axis, size, limit in zip("xyz", block, _MAX_BLOCK, strict=True):
        if size > limit:
            raise ValueError(f"block.{axis} = {size} exceeds the CUDA limit of {limit}")
    threads = block[0] * block[1] * block[2]
    if threads > _MAX_THREADS_PER_BLOCK:
        raise ValueError(
            f"block {block} has {threads} threads; a block holds at most {_MAX_THREADS_PER_BLOCK}"
        )


def marshal_arg(index: int, value: object) -> CArg:
    """One kernel argument as a ctypes value whose bytes are exactly the kernel parameter."""
    if type(value) is int and INT32_MIN <= value <= INT32_MAX:  # the common case, checked cheaply
        return ctypes.c_int(value)
    if isinstance(value, torch.Tensor):
        if value.device.type != "cuda":
            raise TypeError(
                f"argument {index} is a tensor on {value.device}, but kernels read GPU memory: "
                "move it with .cuda() / .to('cuda') (or create it with device='cuda')"
            )
        return ctypes.c_void_p(value.data_ptr())
    if isinstance(value, ctypes._SimpleCData):
        return value
    numpy_arg = _numpy_scalar(value)  # before int/float: numpy.float64 subclasses float
    if numpy_arg is not None:
        return numpy_arg
    if isinstance(value, bool | int):
        number = int(value)
        if not INT32_MIN <= number <= INT32_MAX:
            raise OverflowError(
                f"argument {index} = {number} does not fit a 32-bit int (Python ints are passed as "
                "int32); wrap it in ctypes.c_int64(...) (or ctypes.c_uint64) and declare the kernel "
                "parameter 64-bit (.u64/.s64 in PTX, long long / int64_t in CUDA)"
            )
        return ctypes.c_int(number)
    if isinstance(value, float):
        return ctypes.c_float(value)
    raise TypeError(
        f"argument {index} has unsupported type {type(value).__name__}: pass CUDA tensors, Python "
        "int (int32) / float (float32), or a ctypes scalar such as ctypes.c_int64(...), "
        "ctypes.c_uint32(...), ctypes.c_double(...)"
    )


def _numpy_scalar(value: object) -> CArg | None:
    """A NumPy scalar as its ctypes twin, without importing NumPy (only if the caller already did)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(value, numpy.generic):
        return None
    ctype = _NUMPY_TO_CTYPES.get(str(value.dtype))
    if ctype is None:
        return None
    return ctype(value.item())


def marshal_args(args: Sequence[object]) -> list[CArg]:
    """Every argument of a launch, in order (see `marshal_arg`)."""
    if type(args) is tuple or type(args) is list:
        return [marshal_arg(index, value) for index, value in enumerate(args)]
    if isinstance(args, torch.Tensor) or not isinstance(args, Sequence) or isinstance(args, str | bytes):
        raise TypeError(
            f"args must be a tuple or list of kernel arguments, not {type(args).__name__} "
            "(for a single argument write args=(x,))"
        )
    return [marshal_arg(index, value) for index, value in enumerate(args)]


def check_param_sizes(kernel: str, param_sizes: Sequence[int] | None, cargs: Sequence[CArg]) -> None:
    """Compare the marshalled arguments with the kernel's declared parameters (when the driver told us).

    The driver itself never checks: a missing argument or an int where a pointer is expected just
    reads garbage, so this catches the most common launch bug before it becomes a crash or a mismatch.
    """
    if param_sizes is None:
        return
    if len(cargs) != len(param_sizes):
        raise TypeError(
            f"kernel {kernel!r} takes {len(param_sizes)} parameter(s) (sizes in bytes: "
            f"{list(param_sizes)}) but {len(cargs)} argument(s) were given"
        )
    for index, (carg, size) in enumerate(zip(cargs, param_sizes, strict=True)):
        given = ctypes.sizeof(carg)
        if given != size:
            raise TypeError(
                f"argument {index} of kernel {kernel!r} is {given} bytes ({type(carg).__name__}) but the "
                f"parameter is {size} bytes: tensors are 8-byte pointers, Python int is 4 bytes "
                "(use ctypes.c_int64 for 8), Python float is 4 bytes (use ctypes.c_double for 8)"
            )
