"""A minimal CUDA driver API binding through ctypes on `libcuda.so.1`.

Why not cupy or cuda-python: the worker images must stay lean, and the handful of calls we need
(load a module, find a function, launch it) fit in one small file. Every call is checked, and a
failure raises `CudaDriverError` carrying the driver's own error name and description.

Handles (CUmodule, CUfunction, CUcontext, CUstream) are plain ints here (0 is NULL). `argtypes` are
declared for every function: without them ctypes would pass Python ints as 32-bit C ints and cut
64-bit pointers in half.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from typing import Any

from sandbox.runtime.errors import NO_DRIVER_MESSAGE, CudaDriverError

__all__ = [
    "CUDA_ERROR_NOT_FOUND",
    "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES",
    "CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK",
    "CU_FUNC_ATTRIBUTE_NUM_REGS",
    "CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES",
    "Driver",
    "get_driver",
]

CUDA_SUCCESS = 0
CUDA_ERROR_INVALID_VALUE = 1
CUDA_ERROR_NOT_FOUND = 500

CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0
CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1
CU_FUNC_ATTRIBUTE_NUM_REGS = 4
CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8

_CU_JIT_INFO_LOG_BUFFER = 3
_CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4
_CU_JIT_ERROR_LOG_BUFFER = 5
_CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6
_CU_JIT_LOG_VERBOSE = 12
_JIT_LOG_BYTES = 64 * 1024

_LIBRARY = "libcuda.so.1"

_vp = ctypes.c_void_p
_P = ctypes.POINTER
# name -> argtypes; every function returns CUresult (an int).
_SIGNATURES: dict[str, list[Any]] = {
    "cuInit": [ctypes.c_uint],
    "cuGetErrorName": [ctypes.c_int, _P(ctypes.c_char_p)],
    "cuGetErrorString": [ctypes.c_int, _P(ctypes.c_char_p)],
    "cuDriverGetVersion": [_P(ctypes.c_int)],
    "cuDeviceGet": [_P(ctypes.c_int), ctypes.c_int],
    "cuDevicePrimaryCtxRetain": [_P(_vp), ctypes.c_int],
    "cuCtxGetCurrent": [_P(_vp)],
    "cuCtxSetCurrent": [_vp],
    "cuCtxGetDevice": [_P(ctypes.c_int)],
    "cuModuleLoadData": [_P(_vp), _vp],
    "cuModuleLoadDataEx": [_P(_vp), _vp, ctypes.c_uint, _P(ctypes.c_int), _P(_vp)],
    "cuModuleGetFunction": [_P(_vp), _vp, ctypes.c_char_p],
    "cuModuleUnload": [_vp],
    "cuFuncSetAttribute": [_vp, ctypes.c_int, ctypes.c_int],
    "cuFuncGetAttribute": [_P(ctypes.c_int), ctypes.c_int, _vp],
    "cuLaunchKernel": [
        _vp,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_uint,
        _vp,
        _P(_vp),
        _P(_vp),
    ],
}
# Present only in newer drivers (12.4+); used for argument checks when available.
_OPTIONAL = {"cuFuncGetParamInfo": [_vp, ctypes.c_size_t, _P(ctypes.c_size_t), _P(ctypes.c_size_t)]}


class Driver:
    """The loaded driver library with typed, checked wrappers of the calls we use."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._fns: dict[str, Any] = {}
        for name, argtypes in {**_SIGNATURES, **_OPTIONAL}.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                if name in _OPTIONAL:
                    continue
                raise CudaDriverError(
                    "CUDA_ERROR_NOT_FOUND", CUDA_ERROR_NOT_FOUND, f"{_LIBRARY} has no symbol {name}"
                ) from None
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int
            self._fns[name] = fn
        self._check("cuInit", self._fns["cuInit"](0))

    # -- errors -------------------------------------------------------------------------------
    def error_name(self, code: int) -> str:
        text = ctypes.c_char_p()
        if self._fns["cuGetErrorName"](code, ctypes.byref(text)) != CUDA_SUCCESS or not text.value:
            return f"CUDA_ERROR_{code}"
        return text.value.decode(errors="replace")

    def error_string(self, code: int) -> str:
        text = ctypes.c_char_p()
        if self._fns["cuGetErrorString"](code, ctypes.byref(text)) != CUDA_SUCCESS or not text.value:
            return "unknown CUDA error"
        return text.value.decode(errors="replace")

    def error(self, call: str, code: int, detail: str = "") -> CudaDriverError:
        """The exception for a failed `call`, with the driver's description and our `detail`."""
        message = f"{call} failed: {self.error_string(code)}"
        if detail:
            message += f"; {detail}"
        return CudaDriverError(self.error_name(code), code, message)

    def _check(self, call: str, code: int, detail: str = "") -> None:
        if code != CUDA_SUCCESS:
            raise self.error(call, code, detail)

    # -- version and contexts ---------------------------------------------------------------------
    def version(self) -> int:
        """The driver's CUDA version as an int, e.g. 13000 for 13.0."""
        value = ctypes.c_int()
        self._check("cuDriverGetVersion", self._fns["cuDriverGetVersion"](ctypes.byref(value)))
        return value.value

    def current_context(self) -> int:
        ctx = _vp()
        self._check("cuCtxGetCurrent", self._fns["cuCtxGetCurrent"](ctypes.byref(ctx)))
        return ctx.value or 0

    def ensure_context(self, device: int) -> int:
        """The calling thread's current context; if it has none, the device's primary context made current.

        The primary context is the one PyTorch's runtime uses, so tensors allocated by torch are valid
        in modules loaded here. A retained primary context is deliberately never released: the worker
        process owns it until it exits.
        """
        ctx = self.current_context()
        if ctx:
            return ctx
        handle = ctypes.c_int()
        self._check("cuDeviceGet", self._fns["cuDeviceGet"](ctypes.byref(handle), device))
        primary = _vp()
        self._check(
            "cuDevicePrimaryCtxRetain",
            self._fns["cuDevicePrimaryCtxRetain"](ctypes.byref(primary), handle),
        )
        self._check("cuCtxSetCurrent", self._fns["cuCtxSetCurrent"](primary))
        return primary.value or 0

    def set_current(self, ctx: int) -> None:
        self._check("cuCtxSetCurrent", self._fns["cuCtxSetCurrent"](_vp(ctx)))

    # -- modules ---------------------------------------------------------------------------------
    def load_data(self, image: bytes) -> int:
        """Load a cubin (or fatbin) image into the current context."""
        module = _vp()
        buffer = ctypes.create_string_buffer(image, len(image))
        self._check(
            "cuModuleLoadData",
            self._fns["cuModuleLoadData"](ctypes.byref(module), ctypes.cast(buffer, _vp)),
            "the cubin may be for another GPU architecture or from a newer toolkit than the driver",
        )
        return module.value or 0

    def load_ptx(self, ptx: str) -> tuple[int, str, str]:
        """JIT-compile PTX text with the driver; returns (module, info log, error log).

        A failed JIT is returned with module 0 and the driver's error log, not raised, so the caller
        can turn it into a compile error with the log as text.
        """
        image = ptx.encode() + b"\0"
        buffer = ctypes.create_string_buffer(image, len(image))
        info_log = ctypes.create_string_buffer(_JIT_LOG_BYTES)
        error_log = ctypes.create_string_buffer(_JIT_LOG_BYTES)
        option_keys = [
            _CU_JIT_INFO_LOG_BUFFER,
            _CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
            _CU_JIT_ERROR_LOG_BUFFER,
            _CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
            _CU_JIT_LOG_VERBOSE,
        ]
        option_values: list[int | None] = [
            ctypes.addressof(info_log),
            _JIT_LOG_BYTES,
            ctypes.addressof(error_log),
            _JIT_LOG_BYTES,
            1,
        ]
        keys = (ctypes.c_int * len(option_keys))(*option_keys)
        values = (_vp * len(option_values))(*option_values)
        module = _vp()
        code = self._fns["cuModuleLoadDataEx"](
            ctypes.byref(module), ctypes.cast(buffer, _vp), len(option_keys), keys, values
        )
        info = info_log.value.decode(errors="replace")
        errors = error_log.value.decode(errors="replace")
        if code != CUDA_SUCCESS:
            header = f"{self.error_name(code)}: {self.error_string(code)}"
            return 0, info, f"{header}\n{errors}".strip()
        return module.value or 0, info, errors

    def get_function(self, module: int, name: str) -> int:
        func = _vp()
        code = self._fns["cuModuleGetFunction"](ctypes.byref(func), _vp(module), name.encode())
        if code != CUDA_SUCCESS:
            raise self.error(f"cuModuleGetFunction({name!r})", code)
        return func.value or 0

    def unload(self, module: int) -> None:
        self._check("cuModuleUnload", self._fns["cuModuleUnload"](_vp(module)))

    # -- functions -------------------------------------------------------------------------------
    def func_attribute(self, func: int, attribute: int) -> int:
        value = ctypes.c_int()
        self._check(
            "cuFuncGetAttribute",
            self._fns["cuFuncGetAttribute"](ctypes.byref(value), attribute, _vp(func)),
        )
        return value.value

    def set_func_attribute(self, func: int, attribute: int, value: int) -> None:
        self._check("cuFuncSetAttribute", self._fns["cuFuncSetAttribute"](_vp(func), attribute, value))

    def param_sizes(self, func: int) -> list[int] | None:
        """The byte size of each kernel parameter, or None when the driver cannot say (before 12.4)."""
        fn = self._fns.get("cuFuncGetParamInfo")
        if fn is None:
            return None
        sizes: list[int] = []
        offset, size = ctypes.c_size_t(), ctypes.c_size_t()
        for index in range(4096):
            code = fn(_vp(func), index, ctypes.byref(offset), ctypes.byref(size))
            if code == CUDA_ERROR_INVALID_VALUE:
                return sizes
            if code != CUDA_SUCCESS:
                return None
            sizes.append(size.value)
        return None

    def launch(
        self,
        func: int,
        grid: Sequence[int],
        block: Sequence[int],
        *,
        shared_mem: int,
        stream: int,
        args: Sequence[ctypes._SimpleCData[Any]],
    ) -> None:
        """`cuLaunchKernel` with each argument passed by address (the driver copies them at launch)."""
        count = len(args)
        array_type = _POINTER_ARRAYS.get(count)
        if array_type is None:
            array_type = _POINTER_ARRAYS.setdefault(count, _vp * max(count, 1))
        pointers = array_type(*[ctypes.addressof(arg) for arg in args])
        # Plain ints go straight through the declared c_void_p/c_uint argtypes (no wrapper objects).
        code = self._fns["cuLaunchKernel"](
            func,
            grid[0],
            grid[1],
            grid[2],
            block[0],
            block[1],
            block[2],
            shared_mem,
            stream or None,
            pointers,
            None,
        )
        self._check("cuLaunchKernel", code)


_POINTER_ARRAYS: dict[int, Any] = {}  # argument count -> ctypes array type (built once each)
_driver: Driver | None = None
_lock = threading.Lock()


def get_driver() -> Driver:
    """The process-wide driver binding, loaded and initialised on first use.

    Raises `CudaDriverError` with a plain explanation when `libcuda.so.1` is absent (no NVIDIA
    driver on this machine), which is the error a candidate sees on a CPU-only host.
    """
    global _driver  # one binding per process, created lazily
    with _lock:
        if _driver is None:
            try:
                lib = ctypes.CDLL(_LIBRARY)
            except OSError as exc:
                raise CudaDriverError("CUDA_DRIVER_NOT_FOUND", -1, f"{NO_DRIVER_MESSAGE} ({exc})") from exc
            _driver = Driver(lib)
        return _driver
