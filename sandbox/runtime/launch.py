"""The launch API candidates use: `load_ptx`, `load_cuda`, `load_cubin` -> `Module` -> `Kernel`.

A candidate for the `ptx` or `cuda` target keeps its kernel source in a module-level string and does

    self.kernel = load_ptx(PTX).get_function("relu")
    self.kernel(grid=(blocks, 1, 1), block=(256, 1, 1), args=(x, y, n))

Loading first looks in the shared kernel cache (`KERNELWRIGHT_KERNEL_CACHE`), where the service's
compile step has put a cubin for exactly this source and architecture, and only compiles itself on a
miss: PTX through the driver's JIT, CUDA C++ through nvcc or NVRTC (the cubin is then stored in the
cache for the next worker). Kernels run on PyTorch's current stream, in PyTorch's primary context, so
they order correctly with the surrounding torch operations.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Literal

import torch

from sandbox.runtime import compilers, kernel_cache
from sandbox.runtime.cuda_driver import (
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
    CU_FUNC_ATTRIBUTE_NUM_REGS,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
    CUDA_ERROR_NOT_FOUND,
    Driver,
    get_driver,
)
from sandbox.runtime.errors import CudaDriverError, KernelCompileError
from sandbox.runtime.marshal import (
    Dim3,
    check_block,
    check_grid,
    check_param_sizes,
    marshal_args,
    normalize_dim3,
)

__all__ = ["Kernel", "Module", "ModuleOrigin", "load_cubin", "load_cuda", "load_ptx"]

ModuleOrigin = Literal["cubin", "cache", "driver-jit", "nvcc", "nvrtc", "memory"]

_DEFAULT_DYNAMIC_SMEM_LIMIT = 48 * 1024
_SHAPE_CACHE_SIZE = 64
# torch's raw current-stream getter (what Triton uses too): much cheaper than building a Stream object.
_raw_current_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
# CUDA sources compiled in this process (key -> cubin), so re-instantiating a model does not recompile
# when no shared cache folder is configured.
_compiled: dict[str, bytes] = {}
_compiled_lock = threading.Lock()
# Kernels launched through `Kernel.__call__` in this process: the worker's evidence that a candidate's
# own kernel ran (`sandbox.runtime.guards`). A one-element list so that the hot path is one cheap line.
launch_count = [0]


class Kernel:
    """One `__global__`/`.entry` function of a loaded `Module`; call it to launch it."""

    def __init__(self, module: Module, name: str, handle: int) -> None:
        self.module = module
        self.name = name
        self._handle = handle
        self._param_sizes: list[int] | None = None
        self._param_sizes_known = False
        self._dynamic_smem_limit = _DEFAULT_DYNAMIC_SMEM_LIMIT
        self._shapes: dict[tuple[object, object], tuple[Dim3, Dim3]] = {}

    @property
    def num_regs(self) -> int:
        """Registers per thread the compiled kernel uses."""
        return self.module.driver.func_attribute(self._handle, CU_FUNC_ATTRIBUTE_NUM_REGS)

    @property
    def max_threads_per_block(self) -> int:
        """The largest block this kernel can be launched with (registers and shared memory permitting)."""
        return self.module.driver.func_attribute(self._handle, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK)

    @property
    def static_shared_mem(self) -> int:
        """Bytes of statically declared shared memory."""
        return self.module.driver.func_attribute(self._handle, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)

    def __call__(
        self,
        *,
        grid: int | Sequence[int],
        block: int | Sequence[int],
        args: Sequence[object],
        shared_mem: int = 0,
        stream: torch.cuda.Stream | int | None = None,
    ) -> None:
        """Launch asynchronously on `stream` (default: torch's current stream of the module's device).

        `args`: CUDA tensors (passed as device pointers), Python int (int32), float (float32), or ctypes
        scalars (`ctypes.c_int64(n)`, `ctypes.c_uint32(...)`, `ctypes.c_double(...)`) for other widths.
        `shared_mem`: bytes of dynamic shared memory (`extern .shared` / `extern __shared__`); above
        48 KiB the kernel is opted in to the larger limit automatically.
        """
        grid3, block3 = self._shape(grid, block)
        if isinstance(shared_mem, bool) or not isinstance(shared_mem, int) or shared_mem < 0:
            raise ValueError(f"shared_mem must be a non-negative int (bytes), not {shared_mem!r}")
        cargs = marshal_args(args)
        self._check_devices(args)
        check_param_sizes(self.name, self._declared_param_sizes(), cargs)
        driver = self.module.driver
        self.module.make_current()
        if shared_mem > self._dynamic_smem_limit:
            try:
                driver.set_func_attribute(
                    self._handle, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared_mem
                )
            except CudaDriverError as exc:
                raise CudaDriverError(
                    exc.name,
                    exc.code,
                    f"{exc.message}; kernel {self.name!r} asked for {shared_mem} bytes of dynamic shared "
                    f"memory on top of {self.static_shared_mem} static, more than this GPU allows per block",
                ) from exc
            self._dynamic_smem_limit = shared_mem
        try:
            driver.launch(
                self._handle,
                grid3,
                block3,
                shared_mem=shared_mem,
                stream=self._stream_handle(stream),
                args=cargs,
            )
        except CudaDriverError as exc:  # described only on failure: launches must stay cheap
            detail = self._describe(grid3, block3, shared_mem, len(cargs))
            raise CudaDriverError(exc.name, exc.code, f"{exc.message}; {detail}") from exc
        launch_count[0] += 1

    def _shape(self, grid: int | Sequence[int], block: int | Sequence[int]) -> tuple[Dim3, Dim3]:
        """Normalised, checked (grid, block), remembered per distinct hashable launch shape."""
        try:
            return self._shapes[(grid, block)]
        except (KeyError, TypeError):  # TypeError: unhashable (a list): just recompute
            pass
        grid3, block3 = normalize_dim3(grid, "grid"), normalize_dim3(block, "block")
        check_grid(grid3)
        check_block(block3)
        if len(self._shapes) < _SHAPE_CACHE_SIZE:
            with contextlib.suppress(TypeError):
                self._shapes[(grid, block)] = (grid3, block3)
        return grid3, block3

    def _declared_param_sizes(self) -> list[int] | None:
        if not self._param_sizes_known:
            self._param_sizes = self.module.driver.param_sizes(self._handle)
            self._param_sizes_known = True
        return self._param_sizes

    def _check_devices(self, args: Sequence[object]) -> None:
        for index, value in enumerate(args):
            if isinstance(value, torch.Tensor) and value.device.index not in (None, self.module.device):
                raise ValueError(
                    f"argument {index} is on {value.device} but kernel {self.name!r} was loaded on "
                    f"cuda:{self.module.device}"
                )

    def _stream_handle(self, stream: torch.cuda.Stream | int | None) -> int:
        if stream is None:
            if _raw_current_stream is not None:
                return int(_raw_current_stream(self.module.device))
            return int(torch.cuda.current_stream(self.module.device).cuda_stream)
        if isinstance(stream, int):
            return stream
        return int(stream.cuda_stream)

    def _describe(self, grid: Dim3, block: Dim3, shared_mem: int, nargs: int) -> str:
        return (
            f"kernel {self.name!r} with grid={grid}, block={block}, shared_mem={shared_mem}, {nargs} args "
            f"(this kernel allows at most {self._safe_max_threads()} threads per block)"
        )

    def _safe_max_threads(self) -> str:
        try:
            return str(self.max_threads_per_block)
        except CudaDriverError:
            return "?"

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, module={self.module!r})"


class Module:
    """A loaded CUDA module; keeps itself loaded while it or any of its `Kernel`s is referenced."""

    def __init__(
        self, driver: Driver, handle: int, context: int, device: int, origin: ModuleOrigin, *, log: str = ""
    ) -> None:
        self.driver = driver
        self.device = device
        self.origin: ModuleOrigin = origin
        self.log = log
        self._handle = handle
        self._context = context
        self._kernels: dict[str, Kernel] = {}

    def get_function(self, name: str) -> Kernel:
        """The kernel called `name` (PTX `.entry` name; for CUDA declare it `extern "C"` to keep it)."""
        if name not in self._kernels:
            if not self._handle:
                raise RuntimeError("this module was unloaded")
            self.make_current()
            try:
                handle = self.driver.get_function(self._handle, name)
            except CudaDriverError as exc:
                if exc.code != CUDA_ERROR_NOT_FOUND:
                    raise
                raise CudaDriverError(
                    exc.name,
                    exc.code,
                    f"no kernel named {name!r} in this module: use the PTX `.entry` name, and in CUDA C++ "
                    f'declare the kernel `extern "C" __global__` so that its name is not C++-mangled',
                ) from exc
            self._kernels[name] = Kernel(self, name, handle)
        return self._kernels[name]

    def make_current(self) -> None:
        """Make the module's context current in this thread if the thread has none (e.g. a new thread)."""
        current = self.driver.current_context()
        if current == self._context:
            return
        if current == 0:
            self.driver.set_current(self._context)
            return
        raise CudaDriverError(
            "CUDA_ERROR_INVALID_CONTEXT",
            201,
            f"the current CUDA context is not the one this module was loaded in (cuda:{self.device}); "
            "load and launch kernels with the same current device",
        )

    def unload(self) -> None:
        """Unload now (normally left to garbage collection).

        Waits for the device first: launches are asynchronous, and the code of a kernel still running
        must not be unloaded under it.
        """
        handle, self._handle = self._handle, 0
        if handle:
            torch.cuda.synchronize(self.device)
            self.driver.unload(handle)

    def __del__(self) -> None:
        # The driver may be gone at interpreter exit; nothing is left to clean up then.
        with contextlib.suppress(Exception):
            self.unload()

    def __repr__(self) -> str:
        return f"Module(device=cuda:{self.device}, origin={self.origin!r})"


def _prepare() -> tuple[Driver, int, int, str]:
    """(driver, context, device ordinal, sm_XX) for torch's current device, with a context current."""
    driver = get_driver()
    if not torch.cuda.is_available():
        raise CudaDriverError(
            "CUDA_ERROR_NO_DEVICE",
            100,
            "torch.cuda.is_available() is False: this torch build or machine has no usable CUDA device, "
            "and PTX/CUDA kernels need an NVIDIA GPU",
        )
    device = torch.cuda.current_device()  # initialises torch's CUDA state lazily
    context = driver.ensure_context(device)
    major, minor = torch.cuda.get_device_capability(device)
    return driver, context, device, kernel_cache.format_arch(major, minor)


def _load_image(driver: Driver, context: int, device: int, image: bytes, origin: ModuleOrigin) -> Module:
    return Module(driver, driver.load_data(image), context, device, origin)


def load_cubin(data: bytes) -> Module:
    """Load a compiled cubin (or fatbin) image on torch's current device."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"load_cubin takes the cubin's bytes, not {type(data).__name__}")
    driver, context, device, _ = _prepare()
    return _load_image(driver, context, device, bytes(data), "cubin")


def _from_cache(driver: Driver, context: int, device: int, key: str) -> Module | None:
    """The module from the shared cache's cubin, or None on a miss or an unloadable cubin."""
    path = kernel_cache.cached_cubin(key)
    if path is None:
        return None
    try:
        return _load_image(driver, context, device, path.read_bytes(), "cache")
    except (OSError, CudaDriverError):
        # e.g. a cubin from a newer toolkit than this driver: compiling here is still correct.
        return None


def load_ptx(source: str) -> Module:
    """Load PTX text: the service's cubin from the cache when present, else the driver's JIT.

    Raises `KernelCompileError` with the JIT's log when the PTX does not assemble.
    """
    if not isinstance(source, str):
        raise TypeError(f"load_ptx takes the PTX text as a str, not {type(source).__name__}")
    driver, context, device, device_arch = _prepare()
    arch = kernel_cache.resolve_arch("ptx", source, device_arch)
    cached = _from_cache(driver, context, device, kernel_cache.cache_key("ptx", source, arch))
    if cached is not None:
        return cached
    handle, info, errors = driver.load_ptx(source)
    if not handle:
        raise KernelCompileError(errors or info, compiler="driver PTX JIT")
    return Module(driver, handle, context, device, "driver-jit", log=info)


def load_cuda(source: str, *, options: Sequence[str] = ()) -> Module:
    """Load CUDA C++ source (kernels declared `extern "C" __global__`), compiled for the current GPU.

    The cubin comes from the shared cache when the service compiled it already; otherwise nvcc (or
    NVRTC) compiles it here and the result is stored in the cache. `options` go to the compiler
    (`-arch=...` there replaces ours; use options both nvcc and NVRTC accept, e.g. `-use_fast_math`).
    """
    if not isinstance(source, str):
        raise TypeError(f"load_cuda takes the CUDA source as a str, not {type(source).__name__}")
    if isinstance(options, str) or not all(isinstance(opt, str) for opt in options):
        raise TypeError("options must be a sequence of str, e.g. options=('-use_fast_math',)")
    opts = tuple(options)
    driver, context, device, device_arch = _prepare()
    arch = kernel_cache.resolve_arch("cuda", source, device_arch)
    key = kernel_cache.cache_key("cuda", source, arch, opts)
    cached = _from_cache(driver, context, device, key)
    if cached is not None:
        return cached
    with _compiled_lock:
        image = _compiled.get(key)
    if image is not None:
        return _load_image(driver, context, device, image, "memory")
    image, compiler = compilers.compile_cuda(source, arch, opts)
    kernel_cache.store_cubin(key, image)
    with _compiled_lock:
        _compiled[key] = image
    origin: ModuleOrigin = "nvrtc" if compiler == "nvrtc" else "nvcc"
    return _load_image(driver, context, device, image, origin)
