"""Static anti-hack policy for candidate modules: AST rules, nothing is executed.

Generated code is hostile. A model rewarded for "correct and fast" learns to return the reference's
answer without computing it, to let PyTorch do the work behind a token kernel launch, to cache results
across calls, to hide work from the timer (side streams, threads, lazy outputs) or to tamper with the
timer and the checker themselves. The verifier's runtime guards (`sandbox.runtime.guards`) and process
isolation catch much of this when it runs; these rules reject the known patterns before anything runs,
with a stable `hack.*` code and a hint the agent can act on.

Rules that concern the module as a whole (imports, monkey-patching, file/network access, introspection,
dynamic code) apply everywhere. Rules about the computation (torch compute ops, fallbacks, state kept
across calls, clock reads) apply to the code `ModelNew.forward` can reach: forward itself, the module's
functions and `ModelNew` methods it calls, and the classes it instantiates or calls (`Helper.apply`,
`self.layer(...)`). `@triton.jit` bodies are kernel code and exempt from the torch rules.

Codes (errors unless noted): hack.side_stream, hack.cuda_graph (warning), hack.concurrency,
hack.process, hack.monkeypatch, hack.introspection, hack.ctypes, hack.try_fallback, hack.bare_except,
hack.file_io, hack.network, hack.dynamic_code, hack.serialization, hack.torch_compute, hack.torch_op
(warning), hack.torch_unlisted (warning), hack.tensor_arithmetic (warning), hack.torch_internals,
hack.tensor_subclass, hack.state_in_forward, hack.cache_decorator, hack.timer, hack.no_launch
(warning).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from kernelwright.domain import Diagnostic, Severity, Target

__all__ = ["HackPolicy", "check_hacks"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --- the torch policy ---------------------------------------------------------------------------------

_ALLOWED_TORCH = frozenset(
    {
        # allocation (uninitialised: the kernel must write every element)
        "empty",
        "empty_like",
        "empty_strided",
        # views and layout
        "reshape",
        "flatten",
        "permute",
        "transpose",
        "t",
        "squeeze",
        "unsqueeze",
        "narrow",
        "select",
        "split",
        "chunk",
        "unbind",
        "movedim",
        "as_strided",
        "broadcast_to",
        "view_as_real",
        "view_as_complex",
        # metadata and utilities
        "numel",
        "is_tensor",
        "is_floating_point",
        "is_complex",
        "device",
        "Size",
        "dtype",
        "finfo",
        "iinfo",
        "get_default_dtype",
        "promote_types",
        "result_type",
        "broadcast_shapes",
        "no_grad",
        "inference_mode",
        "enable_grad",
        "set_grad_enabled",
        "is_grad_enabled",
        "Generator",
    }
)
_DISCOURAGED_TORCH = frozenset(
    {
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "arange",
        "tensor",
        "as_tensor",
        "from_numpy",
        "cat",
        "concat",
        "concatenate",
        "stack",
        "hstack",
        "vstack",
        "contiguous_format",
        "clone",
        "nn.functional.pad",
        "rand",
        "randn",
        "randint",
        "rand_like",
        "randn_like",
        "manual_seed",
        "nn.Parameter",
        "nn.Module",
        "nn.ModuleList",
        "nn.ParameterList",
    }
)
_COMPUTE_TORCH = _words(
    """
    matmul mm bmm addmm addmv addbmm baddbmm mv dot vdot inner outer ger einsum tensordot kron chain_matmul
    conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d convolution conv_tbc
    relu relu_ relu6 sigmoid sigmoid_ tanh tanh_ softmax log_softmax exp exp_ exp2 expm1 log log2 log10
    log1p sqrt rsqrt abs abs_ neg negative reciprocal pow square sin cos tan asin acos atan atan2 arctan2
    sinh cosh erf erfc erfinv sign sgn floor ceil round trunc frac clamp clamp_ clip clamp_min clamp_max
    maximum minimum fmax fmin max min amax amin argmax argmin aminmax sum nansum mean nanmean prod std
    var std_mean var_mean norm cumsum cumprod cummax cummin logcumsumexp logsumexp add sub subtract mul
    multiply div divide true_divide floor_divide remainder fmod where masked_fill lerp addcmul addcdiv
    sort argsort topk kthvalue median nanmedian mode quantile nanquantile any all eq ne lt le gt ge
    isclose allclose equal batch_norm layer_norm group_norm instance_norm rms_norm dropout gelu silu selu
    celu elu hardtanh prelu rrelu threshold logit hardshrink softplus tril triu diag diagonal trace cross
    cdist pdist cosine_similarity pairwise_distance bilinear embedding index_select gather scatter
    scatter_add scatter_reduce index_add index_copy index_put take take_along_dim masked_select nonzero
    bincount histc histogram unique unique_consecutive flip fliplr flipud roll rot90 trapz trapezoid diff
    bucketize searchsorted max_pool1d max_pool2d max_pool3d avg_pool1d adaptive_avg_pool1d
    adaptive_max_pool1d pixel_shuffle pixel_unshuffle rsub xlogy hypot logaddexp logaddexp2 sinc
    nan_to_num count_nonzero square_ softmax_ addr cholesky inverse det logdet slogdet pinverse svd
    qr lu triangular_solve cholesky_solve matrix_power matrix_exp compile
    """
)
# Namespaces whose every function computes (unless allowed or discouraged above).
_COMPUTE_NAMESPACES = ("nn.functional.", "linalg.", "fft.", "special.", "sparse.", "ops.", "jit.", "nested.")
# Namespaces of utilities that never compute on tensors.
_UTILITY_NAMESPACES = ("cuda.", "backends.", "version.", "distributed.is_", "accelerator.")

_COMPUTE_METHODS = _words(
    """
    sum mean max min amax amin argmax argmin prod std var norm cumsum cumprod cummax cummin logsumexp
    softmax log_softmax relu relu_ sigmoid sigmoid_ tanh tanh_ exp exp_ exp2 expm1 log log_ log1p log2
    sqrt sqrt_ rsqrt abs abs_ neg neg_ reciprocal pow pow_ square sin cos clamp clamp_ clamp_min
    clamp_max clip matmul mm bmm mv dot addmm baddbmm mul mul_ div div_ sub sub_ add_ addcmul addcmul_
    where masked_fill masked_fill_ topk erf tril triu gather scatter scatter_ scatter_add scatter_add_
    index_select flip roll any all eq ne lt le gt ge maximum minimum floor ceil round sign lerp diag
    trace outer cross median logit nan_to_num count_nonzero fmod remainder silu gelu softplus
    """
)
_DISCOURAGED_METHODS = frozenset(
    {
        "float",
        "half",
        "double",
        "bfloat16",
        "int",
        "long",
        "bool",
        "clone",
        "copy_",
        "fill_",
        "zero_",
        "new_zeros",
        "new_ones",
        "new_full",
        "new_tensor",
        "type_as",
        "repeat",
        "repeat_interleave",
        "tile",
    }
)
_DTYPE_NAMES = _words(
    """
    float float32 float64 double float16 half bfloat16 int int8 int16 int32 int64 long short uint8 bool
    complex64 complex128 float8_e4m3fn float8_e5m2
    """
)


@dataclass(frozen=True)
class HackPolicy:
    """Which torch calls `ModelNew.forward` may make when a custom kernel must do the computation.

    Names are relative to `torch` (`"empty_like"`, `"nn.functional.pad"`). `allowed_torch`: silent.
    `discouraged_torch` / `discouraged_methods`: a warning (`hack.torch_op`): allocation that fills
    memory, copies, dtype conversions. `compute_torch`, `compute_namespaces`, `compute_methods` and the
    `@` operator: the main computation, an error (`hack.torch_compute`). Other torch functions get a
    `hack.torch_unlisted` warning. `require_kernel=False` turns the torch rules off (e.g. a problem
    whose point is the glue code).
    """

    allowed_torch: frozenset[str] = _ALLOWED_TORCH
    discouraged_torch: frozenset[str] = _DISCOURAGED_TORCH
    compute_torch: frozenset[str] = _COMPUTE_TORCH
    compute_namespaces: tuple[str, ...] = _COMPUTE_NAMESPACES
    utility_namespaces: tuple[str, ...] = _UTILITY_NAMESPACES
    compute_methods: frozenset[str] = _COMPUTE_METHODS
    discouraged_methods: frozenset[str] = _DISCOURAGED_METHODS
    require_kernel: bool = True
    extra_protected_modules: frozenset[str] = field(default_factory=frozenset)


# --- module-wide tables -------------------------------------------------------------------------------

# imported module (or any parent package of it) -> (code, what it is)
_BANNED_IMPORTS: dict[str, tuple[str, str]] = {
    **{m: ("hack.concurrency", "threads or processes") for m in ("threading", "_thread", "multiprocessing")},
    **{m: ("hack.concurrency", "threads or processes") for m in ("concurrent", "asyncio", "sched")},
    **{m: ("hack.process", "other processes or signals") for m in ("subprocess", "pty", "signal")},
    **{m: ("hack.process", "other processes or signals") for m in ("resource", "pexpect", "sh")},
    **{
        m: ("hack.network", "the network")
        for m in (
            "socket",
            "ssl",
            "urllib",
            "urllib3",
            "requests",
            "http",
            "httpx",
            "aiohttp",
            "ftplib",
            "smtplib",
            "telnetlib",
            "websocket",
            "websockets",
            "xmlrpc",
            "grpc",
            "socketserver",
        )
    },
    **{
        m: ("hack.introspection", "interpreter internals (frames, objects of the worker)")
        for m in ("gc", "inspect", "traceback", "_ctypes", "cffi", "dis", "tracemalloc", "faulthandler")
    },
    **{m: ("hack.monkeypatch", "the builtins module") for m in ("builtins", "__builtin__")},
    **{
        m: ("hack.dynamic_code", "dynamic imports or code execution")
        for m in ("importlib", "runpy", "code", "codeop", "imp", "zipimport", "pkgutil")
    },
    **{
        m: ("hack.serialization", "serialization (pickles execute code; files hold answers)")
        for m in ("pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib")
    },
    **{
        m: ("hack.file_io", "the file system")
        for m in ("shutil", "tempfile", "glob", "fileinput", "mmap", "sqlite3", "zipfile", "tarfile")
    },
    **{
        m: ("hack.torch_internals", "torch internals that change how tensors or ops behave")
        for m in (
            "torch._dynamo",
            "torch._subclasses",
            "torch.utils._python_dispatch",
            "torch.library",
            "torch._inductor",
            "torch._prims",
            "torch._refs",
            "torch._ops",
            "torch.fx",
            "torch.overrides",
            "torch._C",
        )
    },
    "copyreg": ("hack.serialization", "serialization (pickles execute code; files hold answers)"),
}

_BANNED_CALLS: dict[str, tuple[str, str]] = {
    **{f"os.{f}": ("hack.process", "starts or signals processes") for f in ("fork", "forkpty", "system")},
    **{f"os.{f}": ("hack.process", "starts or signals processes") for f in ("popen", "kill", "killpg")},
    **{
        f"os.{f}": ("hack.process", "starts or signals processes")
        for f in (
            "execv",
            "execve",
            "execl",
            "execle",
            "execlp",
            "execvp",
            "execvpe",
            "spawnl",
            "spawnv",
            "spawnve",
            "spawnlp",
            "posix_spawn",
            "posix_spawnp",
            "register_at_fork",
        )
    },
    **{
        f"os.{f}": ("hack.file_io", "touches the file system or file descriptors")
        for f in (
            "open",
            "fdopen",
            "read",
            "write",
            "pread",
            "pwrite",
            "remove",
            "unlink",
            "rename",
            "renames",
            "replace",
            "mkdir",
            "makedirs",
            "rmdir",
            "removedirs",
            "listdir",
            "scandir",
            "walk",
            "fwalk",
            "chmod",
            "chown",
            "symlink",
            "link",
            "readlink",
            "truncate",
            "mkfifo",
            "mknod",
            "utime",
            "chdir",
            "stat",
            "lstat",
            "dup",
            "dup2",
            "pipe",
            "sendfile",
            "memfd_create",
        )
    },
    **{f"io.{f}": ("hack.file_io", "opens files") for f in ("open", "FileIO", "open_code")},
    "codecs.open": ("hack.file_io", "opens files"),
    **{
        f"torch.{f}": ("hack.serialization", "reads or writes tensors on disk")
        for f in ("save", "load", "from_file", "serialization.save", "serialization.load")
    },
    **{
        f"{np}.{f}": ("hack.serialization", "reads or writes arrays on disk")
        for np in ("numpy", "np")
        for f in ("load", "save", "savez", "fromfile", "memmap", "loadtxt", "savetxt", "genfromtxt")
    },
    **{
        f"sys.{f}": ("hack.introspection", "reaches into the interpreter (frames, modules, tracing)")
        for f in ("_getframe", "_current_frames", "settrace", "setprofile", "addaudithook", "gettrace")
    },
    **{
        f"functools.{f}": ("hack.cache_decorator", "caches results across calls")
        for f in ("lru_cache", "cache", "cached_property")
    },
    "types.CodeType": ("hack.dynamic_code", "builds code objects"),
    "types.FunctionType": ("hack.dynamic_code", "builds functions from code objects"),
}
# Attributes of `sys` that expose the worker (its modules, frames, import machinery) even without a call.
_SYS_ATTRIBUTES = frozenset(
    {
        "modules",
        "_getframe",
        "_current_frames",
        "settrace",
        "setprofile",
        "meta_path",
        "path_hooks",
        "exc_info",
        "exception",
        "last_traceback",
        "last_exc",
        "addaudithook",
        "_current_exceptions",
    }
)
_BUILTIN_CALLS: dict[str, tuple[str, str]] = {
    "open": ("hack.file_io", "opens files"),
    "exec": ("hack.dynamic_code", "executes code built at run time"),
    "eval": ("hack.dynamic_code", "executes code built at run time"),
    "compile": ("hack.dynamic_code", "executes code built at run time"),
    "__import__": ("hack.dynamic_code", "imports modules by computed names"),
    "breakpoint": ("hack.dynamic_code", "starts a debugger"),
}
_FRAME_ATTRIBUTES = frozenset(
    {"f_back", "f_locals", "f_globals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next"}
    | {"gi_frame", "cr_frame", "ag_frame", "gi_code", "cr_code"}
)
# What the worker counts launches with (Triton's hooks and interpreter, sandbox.runtime's counter).
_LAUNCH_COUNTERS = frozenset(
    {"launch_enter_hook", "launch_exit_hook", "jit_cache_hook", "jit_post_compile_hook"}
    | {"GridExecutor", "InterpretedFunction", "launch_count", "guards", "RuntimeGuard"}
)
_DANGEROUS_DUNDERS = frozenset(
    {"__globals__", "__builtins__", "__subclasses__", "__code__", "__closure__", "__kwdefaults__"}
)
_PATH_IO_METHODS = frozenset(
    {
        "read_text",
        "write_text",
        "read_bytes",
        "write_bytes",
        "touch",
        "unlink",
        "rmdir",
        "iterdir",
        "rglob",
        "symlink_to",
        "hardlink_to",
    }
)
# Modules whose attributes a candidate must never assign: the timers, torch, Triton, our runtime.
_PROTECTED_ROOTS = frozenset(
    {"torch", "triton", "time", "sandbox", "builtins", "sys", "os", "gc", "threading", "timeit"}
    | {"functools", "importlib", "numpy", "np", "math", "random", "kernelwright", "__main__"}
)
_CTYPES_SCALARS = _words(
    """
    c_bool c_byte c_ubyte c_short c_ushort c_int c_uint c_long c_ulong c_longlong c_ulonglong c_size_t
    c_ssize_t c_int8 c_int16 c_int32 c_int64 c_uint8 c_uint16 c_uint32 c_uint64 c_float c_double
    c_longdouble c_void_p
    """
)
_SIDE_STREAM = frozenset(
    {
        "torch.cuda.Stream",
        "torch.cuda.stream",
        "torch.cuda.streams.Stream",
        "torch.cuda.ExternalStream",
        "torch.cuda.set_stream",
        "torch.cuda.StreamContext",
        "torch.Stream",
        "torch.cuda.streams.ExternalStream",
    }
)
_CUDA_GRAPH = frozenset({"torch.cuda.CUDAGraph", "torch.cuda.graph", "torch.cuda.make_graphed_callables"})
_CLOCK_READS = frozenset(
    {f"time.{f}" for f in ("perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic")}
    | {"time.monotonic_ns", "time.process_time", "time.process_time_ns", "time.thread_time"}
    | {"torch.cuda.Event", "datetime.datetime.now", "datetime.datetime.utcnow", "timeit.default_timer"}
)
_KERNEL_HANDLE_CALLS = frozenset({"load_ptx", "load_cuda", "load_cubin", "get_function", "warmup", "compile"})
_MUTATING_METHODS = frozenset(
    {"append", "extend", "insert", "update", "setdefault", "add", "__setitem__", "appendleft", "put"}
)

_HINTS: dict[str, str] = {
    "hack.side_stream": "launch on torch's current stream (the default); work on other streams escapes "
    "the timer and the synchronisation before the outputs are read",
    "hack.cuda_graph": "CUDA graphs reuse static output buffers across calls; launch the kernel directly",
    "hack.concurrency": "do all work synchronously in forward, in this thread",
    "hack.process": "candidates may not start processes or send signals",
    "hack.monkeypatch": "never modify torch, Triton, timers, builtins or the verifier; only define "
    "ModelNew, kernels and helpers",
    "hack.introspection": "a kernel module has no use for frames, the garbage collector or the worker's "
    "modules; compute the outputs from forward's inputs only",
    "hack.ctypes": "ctypes is allowed only for scalar launch arguments such as ctypes.c_int64(n)",
    "hack.try_fallback": "let kernel failures raise; a torch fallback hides a broken kernel",
    "hack.bare_except": "catch specific exceptions, or none: a failing kernel must fail the check",
    "hack.file_io": "candidates may not touch files; keep kernel sources in module-level strings",
    "hack.network": "candidates run without network access",
    "hack.dynamic_code": "import modules with plain import statements and write code directly",
    "hack.serialization": "compute outputs in forward; nothing may be loaded from or saved to disk",
    "hack.torch_compute": "do this computation in your own kernel; torch may only allocate outputs and "
    "reshape/view tensors around the launch",
    "hack.torch_op": "fine for glue, but make sure the kernel does the real work",
    "hack.torch_unlisted": "make sure this torch call does not do the work the kernel should do",
    "hack.tensor_arithmetic": "arithmetic on input tensors in forward runs in torch, not in your kernel",
    "hack.torch_internals": "candidates may not change torch's dispatch, ops or tensor types",
    "hack.tensor_subclass": "return plain torch.Tensor outputs computed by your kernel",
    "hack.state_in_forward": "outputs must be recomputed on every call; keep only kernel handles and "
    "constants set in __init__ on self",
    "hack.cache_decorator": "outputs must be recomputed on every call; do not memoise functions",
    "hack.timer": "forward must not read clocks (behaving differently while timed is a hack)",
    "hack.no_launch": "forward must launch your kernel on every call (kernel[grid](...) for Triton, "
    "kernel(grid=..., block=..., args=...) for PTX/CUDA)",
}
_WARNINGS = frozenset(
    {"hack.cuda_graph", "hack.torch_op", "hack.torch_unlisted", "hack.tensor_arithmetic", "hack.no_launch"}
)


def _is_triton_jit(decorator: ast.expr) -> bool:
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(node, ast.Attribute) and node.attr in ("jit", "autotune", "heuristics"):
        return True
    return isinstance(node, ast.Name) and node.id in ("jit", "autotune", "heuristics")


class _Checker:
    """One pass over one module; collects diagnostics."""

    def __init__(self, tree: ast.Module, policy: HackPolicy) -> None:
        self.tree = tree
        self.policy = policy
        self.found: dict[tuple[str, int | None, str], Diagnostic] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.aliases: dict[str, str] = {}
        self.ctypes_names: set[str] = set()  # aliases of the ctypes module
        self.ctypes_scalars: set[str] = set()  # scalar types imported by name
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.jit_bodies: set[ast.AST] = set()
        self.protected = _PROTECTED_ROOTS | policy.extra_protected_modules
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _is_triton_jit(d) for d in node.decorator_list
            ):
                self.jit_bodies.add(node)

    # --- reporting ----------------------------------------------------------------------------------

    def report(self, code: str, node: ast.AST | None, message: str) -> None:
        line = getattr(node, "lineno", None)
        key = (code, line, message)
        if key in self.found:
            return
        self.found[key] = Diagnostic(
            code=code,
            message=message,
            severity=Severity.WARNING if code in _WARNINGS else Severity.ERROR,
            file="candidate.py",
            line=line,
            column=(getattr(node, "col_offset", -1) + 1) if node is not None else None,
            hint=_HINTS[code],
            source="check",
        )

    # --- name resolution ----------------------------------------------------------------------------

    def collect_aliases(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        self.aliases[root] = root
                    if alias.name == "ctypes":
                        self.ctypes_names.add(alias.asname or "ctypes")
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    if node.module == "ctypes" and alias.name in _CTYPES_SCALARS:
                        self.ctypes_scalars.add(alias.asname or alias.name)
        for node in self.tree.body:  # `F = torch.nn.functional`, `T = torch`
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Attribute | ast.Name)
            ):
                target = self.dotted(node.value)
                if target is not None and target.split(".")[0] in self.protected:
                    self.aliases[node.targets[0].id] = target

    def dotted(self, node: ast.AST) -> str | None:
        """`torch.nn.functional.relu` for `F.relu` (imports resolved), None when not a module path."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            base = self.dotted(node.args[0])
            return f"{base}.{node.args[1].value}" if base is not None else None
        return None

    def is_builtin(self, name: str) -> bool:
        return name not in self.aliases and name not in self.functions and name not in self.classes

    # --- module-wide rules --------------------------------------------------------------------------

    def check_module(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.check_import(node, alias.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    self.report(
                        "hack.dynamic_code", node, "relative import: the candidate is a single module"
                    )
                    continue
                module = node.module or ""
                if not self.check_import(node, module):
                    for alias in node.names:
                        self.check_import(node, f"{module}.{alias.name}", from_import=True)
            elif isinstance(node, ast.Call):
                self.check_call(node)
            elif isinstance(node, ast.Attribute):
                self.check_attribute(node)
            elif isinstance(node, ast.Name):
                self.check_name(node)
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
                targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                for target in targets:
                    for leaf in _assigned(target):
                        self.check_patch(node, leaf)
            elif isinstance(node, ast.ClassDef):
                for base in node.bases:
                    name = self.dotted(base)
                    if name in ("torch.Tensor", "torch.nn.Parameter", "torch._C.TensorBase"):
                        self.report("hack.tensor_subclass", node, f"class {node.name} subclasses {name}")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name in ("__torch_function__", "__torch_dispatch__"):
                    self.report(
                        "hack.tensor_subclass",
                        node,
                        f"defines {node.name}, which intercepts torch operations",
                    )
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call):
                        continue  # reported as a call
                    name = self.dotted(decorator)
                    if name in _BANNED_CALLS and _BANNED_CALLS[name][0] == "hack.cache_decorator":
                        self.report("hack.cache_decorator", decorator, f"@{name} on {node.name}")
        self.check_ctypes()

    def check_import(self, node: ast.AST, module: str, *, from_import: bool = False) -> bool:
        """Report an imported module or name that is banned; True when something was reported."""
        parts = module.split(".")
        if parts[0] == "ctypes":
            if module == "ctypes" or (from_import and len(parts) == 2 and parts[1] in _CTYPES_SCALARS):
                return False
            self.report("hack.ctypes", node, f"imports {module}")
            return True
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in _BANNED_IMPORTS:
                code, what = _BANNED_IMPORTS[prefix]
                self.report(code, node, f"imports {module} ({what})")
                return True
        if module in _BANNED_CALLS:
            code, what = _BANNED_CALLS[module]
            self.report(code, node, f"imports {module} ({what})")
            return True
        if module in _SIDE_STREAM:
            self.report("hack.side_stream", node, f"imports {module}")
            return True
        return False

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        self.check_meta_device(node)
        if isinstance(func, ast.Name) and self.is_builtin(func.id):
            if func.id in _BUILTIN_CALLS:
                code, what = _BUILTIN_CALLS[func.id]
                self.report(code, node, f"calls {func.id}() ({what})")
            elif func.id in ("setattr", "delattr") and node.args:
                self.check_setattr(node)
            elif func.id == "getattr" and len(node.args) >= 2:
                base = self.dotted(node.args[0])
                constant = isinstance(node.args[1], ast.Constant)
                if base is not None and base.split(".")[0] in self.protected and not constant:
                    self.report("hack.dynamic_code", node, f"getattr on {base} with a computed name")
        name = self.dotted(func)
        if name is None:
            if isinstance(func, ast.Attribute) and func.attr in _PATH_IO_METHODS:
                self.report("hack.file_io", node, f".{func.attr}() touches the file system")
            elif isinstance(func, ast.Attribute) and func.attr == "open" and isinstance(func.value, ast.Call):
                opener = self.dotted(func.value.func)
                if opener is not None and opener.startswith("pathlib."):
                    self.report("hack.file_io", node, "Path(...).open() opens files")
            self.check_stream_keyword(node)
            return
        if name in _BANNED_CALLS:
            code, what = _BANNED_CALLS[name]
            self.report(code, node, f"calls {name} ({what})")
        elif name.startswith("pathlib.") and name.split(".")[-1] in _PATH_IO_METHODS | {"open"}:
            self.report("hack.file_io", node, f"calls {name} (touches the file system)")
        elif name in ("torch.compile", "torch.jit.script", "torch.jit.trace") or name.startswith(
            "torch._inductor"
        ):
            self.report("hack.torch_compute", node, f"calls {name}: torch generates the kernel, not you")
        self.check_stream_keyword(node)

    def check_meta_device(self, node: ast.Call) -> None:
        """`device="meta"` (or torch.device("meta")): tensors with a shape and no data."""
        values = [k.value for k in node.keywords if k.arg == "device"]
        if self.dotted(node.func) == "torch.device":
            values += node.args[:1]
        if any(isinstance(v, ast.Constant) and v.value == "meta" for v in values):
            self.report("hack.tensor_subclass", node, "creates meta tensors, which have no data")

    def check_stream_keyword(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg != "stream":
                continue
            value = keyword.value
            if isinstance(value, ast.Constant) and value.value in (None, 0):
                continue
            names = {self.dotted(n.func) for n in ast.walk(value) if isinstance(n, ast.Call)}
            if names & {"torch.cuda.current_stream", "torch.cuda.default_stream"}:
                continue
            self.report("hack.side_stream", node, "launches on an explicitly chosen stream")

    def check_setattr(self, node: ast.Call) -> None:
        target = node.args[0]
        base = self.dotted(target)
        if base is not None and base.split(".")[0] in self.protected:
            self.report("hack.monkeypatch", node, f"setattr/delattr on {base}")

    def check_attribute(self, node: ast.Attribute) -> None:
        if node.attr in _LAUNCH_COUNTERS:
            self.report("hack.monkeypatch", node, f"touches .{node.attr}, which counts kernel launches")
        if node.attr in _FRAME_ATTRIBUTES:
            self.report("hack.introspection", node, f"reads the frame attribute .{node.attr}")
        elif node.attr in _DANGEROUS_DUNDERS:
            self.report("hack.introspection", node, f"reads .{node.attr}")
        name = self.dotted(node)
        if name is None:
            if node.attr == "__dict__":
                base = self.dotted(node.value)
                if base is not None and base.split(".")[0] in self.protected:
                    self.report("hack.monkeypatch", node, f"reads {base}.__dict__")
            return
        parent = self.parents.get(node)
        if isinstance(parent, ast.Attribute):
            return  # judged at the outermost attribute of the chain
        if name in _SIDE_STREAM or name.endswith((".cuda.Stream", ".cuda.stream", ".cuda.ExternalStream")):
            self.report("hack.side_stream", node, f"uses {name}")
        elif name in _CUDA_GRAPH:
            self.report("hack.cuda_graph", node, f"uses {name}")
        elif (
            name.startswith("sys.")
            and name.split(".")[1] in _SYS_ATTRIBUTES
            and not (isinstance(parent, ast.Call) and parent.func is node and name in _BANNED_CALLS)
        ):
            self.report("hack.introspection", node, f"uses {name}")
        elif name.endswith(".__dict__") and name.split(".")[0] in self.protected:
            self.report("hack.monkeypatch", node, f"uses {name}")
        elif name.startswith(("torch.Tensor._make_subclass", "torch._C._TensorBase", "torch._C.TensorBase")):
            self.report("hack.tensor_subclass", node, f"uses {name}")
        else:
            for prefix, (code, what) in _BANNED_IMPORTS.items():
                if code == "hack.torch_internals" and (name == prefix or name.startswith(prefix + ".")):
                    if not name.startswith("torch._C._cuda_getCurrent"):
                        self.report(code, node, f"uses {name} ({what})")
                    break

    def check_name(self, node: ast.Name) -> None:
        if node.id in ("__builtins__", "__loader__", "__spec__"):
            self.report("hack.introspection", node, f"uses {node.id}")
        elif node.id in ("globals", "vars", "locals") and self.is_builtin(node.id):
            parent = self.parents.get(node)
            if isinstance(parent, ast.Call) and parent.func is node:
                self.report("hack.introspection", node, f"calls {node.id}()")

    def check_patch(self, node: ast.AST, target: ast.expr) -> None:
        """Assignments and deletions of attributes (or items) of protected modules and their objects."""
        subject = target.value if isinstance(target, ast.Attribute | ast.Subscript) else None
        if subject is None:
            return
        base = self.dotted(subject)
        if base is None or base.split(".")[0] not in self.protected:
            return
        if isinstance(target, ast.Subscript) and base == "os.environ":
            return
        where = f"{base}.{target.attr}" if isinstance(target, ast.Attribute) else f"{base}[...]"
        self.report("hack.monkeypatch", node, f"assigns {where}")

    def check_ctypes(self) -> None:
        """ctypes only as `ctypes.c_int64(n)`-style scalar constructors (launch arguments)."""
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Name):
                continue
            parent = self.parents.get(node)
            if node.id in self.ctypes_names:
                grand = self.parents.get(parent) if parent is not None else None
                ok = (
                    isinstance(parent, ast.Attribute)
                    and parent.attr in _CTYPES_SCALARS
                    and isinstance(grand, ast.Call)
                    and grand.func is parent
                )
                if not ok:
                    what = (
                        f"ctypes.{parent.attr}" if isinstance(parent, ast.Attribute) else "the ctypes module"
                    )
                    self.report("hack.ctypes", node, f"uses {what} beyond a scalar launch argument")
            elif node.id in self.ctypes_scalars and not (
                isinstance(parent, ast.Call) and parent.func is node
            ):
                self.report("hack.ctypes", node, f"uses {node.id} beyond constructing a scalar")

    # --- forward-reachable rules --------------------------------------------------------------------

    def class_methods(self, cls: ast.ClassDef, seen: set[str] | None = None) -> dict[str, ast.AST]:
        """Methods of a module class, including those inherited from other module classes."""
        seen = seen or set()
        seen.add(cls.name)
        methods: dict[str, ast.AST] = {}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in self.classes and base.id not in seen:
                methods.update(self.class_methods(self.classes[base.id], seen))
        for item in cls.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                methods[item.name] = item
        return methods

    def self_layers(self, cls: ast.ClassDef) -> dict[str, str]:
        """`self.<attr> = SomeClass(...)` in any method: attr -> class (module class or dotted torch)."""
        layers: dict[str, str] = {}
        for node in ast.walk(cls):
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
                continue
            func = node.value.func
            kind = func.id if isinstance(func, ast.Name) and func.id in self.classes else self.dotted(func)
            if kind is None:
                continue
            for target in node.targets:
                if _is_self_attr(target):
                    assert isinstance(target, ast.Attribute)
                    layers[target.attr] = kind
        return layers

    def reachable(self) -> list[tuple[ast.AST, ast.ClassDef | None]]:
        """Functions forward can reach, with the module class whose method each is (None: a function)."""
        model = self.classes.get("ModelNew")
        if model is None:
            return []
        todo: list[tuple[ast.AST, ast.ClassDef | None]] = []
        methods = self.class_methods(model)
        for entry in ("forward", "__call__"):
            if entry in methods:
                todo.append((methods[entry], model))
        done: list[tuple[ast.AST, ast.ClassDef | None]] = []
        seen: set[ast.AST] = set()
        while todo:
            func, owner = todo.pop()
            if func in seen or func in self.jit_bodies:
                continue
            seen.add(func)
            done.append((func, owner))
            own_methods = self.class_methods(owner) if owner is not None else {}
            layers = self.self_layers(owner) if owner is not None else {}
            for node in ast.walk(func):
                if not isinstance(node, ast.Call):
                    continue
                callee = node.func
                if isinstance(callee, ast.Name):
                    if callee.id in self.functions:
                        todo.append((self.functions[callee.id], None))
                    elif callee.id in self.classes:
                        todo.extend(self.entry_points(self.classes[callee.id]))
                elif isinstance(callee, ast.Attribute):
                    value = callee.value
                    if isinstance(value, ast.Name) and value.id == "self":
                        if callee.attr in own_methods:
                            todo.append((own_methods[callee.attr], owner))
                        elif layers.get(callee.attr) in self.classes:
                            todo.extend(self.entry_points(self.classes[layers[callee.attr]]))
                    elif isinstance(value, ast.Name) and value.id in self.classes:
                        todo.extend(self.entry_points(self.classes[value.id]))
                    elif (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Name)
                        and value.func.id == "super"
                        and owner is not None
                    ):
                        for base in owner.bases:
                            if isinstance(base, ast.Name) and base.id in self.classes:
                                base_methods = self.class_methods(self.classes[base.id])
                                if callee.attr in base_methods:
                                    todo.append((base_methods[callee.attr], self.classes[base.id]))
        return done

    def entry_points(self, cls: ast.ClassDef) -> list[tuple[ast.AST, ast.ClassDef | None]]:
        methods = self.class_methods(cls)
        return [(methods[m], cls) for m in ("forward", "__call__", "apply", "backward") if m in methods]

    def check_forward(self) -> None:
        module_names = {
            t.id
            for node in self.tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        }
        for func, owner in self.reachable():
            layers = self.self_layers(owner) if owner is not None else {}
            params = _tensor_params(func)
            for node in _walk_skipping(func, self.jit_bodies):
                if isinstance(node, ast.Call):
                    if self.policy.require_kernel:
                        self.check_compute_call(node, layers)
                    self.check_clock(node)
                    self.check_state_call(node, module_names)
                elif isinstance(node, ast.Try | ast.TryStar):
                    self.check_try(node, layers)
                if isinstance(node, ast.BinOp | ast.AugAssign) and self.policy.require_kernel:
                    self.check_operator(node, params)
                if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                    self.check_state_assign(node, module_names)
                elif isinstance(node, ast.Global | ast.Nonlocal):
                    self.report(
                        "hack.state_in_forward",
                        node,
                        f"forward declares {', '.join(node.names)} {type(node).__name__.lower()}",
                    )

    def check_launches(self, target: Target) -> None:
        """Warn when nothing forward can reach looks like a kernel launch (the runtime guard decides)."""
        reachable = self.reachable()
        if not reachable or target not in (Target.TRITON, Target.PTX, Target.CUDA):
            return
        for func, _ in reachable:
            for node in _walk_skipping(func, self.jit_bodies):
                if not isinstance(node, ast.Call):
                    continue
                if isinstance(node.func, ast.Subscript) or any(
                    k.arg in ("grid", "block") for k in node.keywords
                ):
                    return
        self.report("hack.no_launch", reachable[0][0], "forward never launches a kernel")

    def classify_compute(self, node: ast.Call, layers: dict[str, str]) -> tuple[str, str] | None:
        """(code, message) for a torch call in forward-reachable code, or None when it is fine."""
        func = node.func
        name = self.dotted(func)
        if name is not None and name.startswith("torch.") and name not in _BANNED_CALLS:
            rest = name[len("torch.") :]
            policy = self.policy
            if rest in policy.allowed_torch or rest.split(".")[0] in _DTYPE_NAMES:
                return None
            if rest in policy.discouraged_torch:
                return "hack.torch_op", f"forward calls {name}"
            if rest.startswith("nn.") and rest.count(".") == 1 and rest[3:4].isupper():
                return "hack.torch_compute", f"forward builds and runs torch layer {name}"
            if rest in policy.compute_torch or rest.startswith(policy.compute_namespaces):
                return "hack.torch_compute", f"forward computes with {name}"
            if rest.startswith(policy.utility_namespaces) or rest.startswith("Tensor."):
                return None
            return "hack.torch_unlisted", f"forward calls {name}, which is not on the allowed list"
        if name is not None:
            return None
        if isinstance(func, ast.Attribute):
            value = func.value
            if isinstance(value, ast.Name) and value.id == "self":
                layer = layers.get(func.attr)
                if layer is not None and layer.startswith("torch.nn.") and layer[9:10].isupper():
                    return "hack.torch_compute", f"forward calls torch layer self.{func.attr} ({layer})"
                return None
            if any(k.arg in ("grid", "block", "args") for k in node.keywords):
                return None  # a launch through sandbox.runtime
            if func.attr in self.policy.compute_methods:
                return "hack.torch_compute", f"forward computes with the tensor method .{func.attr}()"
            if func.attr in self.policy.discouraged_methods:
                return "hack.torch_op", f"forward calls .{func.attr}()"
            if func.attr == "to" and self.converts_dtype(node):
                return "hack.torch_op", "forward converts a dtype with .to()"
        return None

    def converts_dtype(self, node: ast.Call) -> bool:
        values = [*node.args, *(k.value for k in node.keywords if k.arg == "dtype")]
        for value in values:
            name = self.dotted(value)
            if name is not None and name.startswith("torch.") and name[6:] in _DTYPE_NAMES:
                return True
            if isinstance(value, ast.Attribute) and value.attr == "dtype":
                return True
        return any(k.arg == "dtype" for k in node.keywords)

    def check_compute_call(self, node: ast.Call, layers: dict[str, str]) -> None:
        result = self.classify_compute(node, layers)
        if result is not None:
            self.report(result[0], node, result[1])

    def check_operator(self, node: ast.BinOp | ast.AugAssign, params: set[str]) -> None:
        if isinstance(node.op, ast.MatMult):
            self.report("hack.torch_compute", node, "forward computes a matrix product with `@` in torch")
            return
        operands = [node.left, node.right] if isinstance(node, ast.BinOp) else [node.target, node.value]
        used = [o.id for o in operands if isinstance(o, ast.Name) and o.id in params]
        if used:
            self.report(
                "hack.tensor_arithmetic", node, f"forward does arithmetic on the input {used[0]} in torch"
            )

    def check_try(self, node: ast.Try | ast.TryStar, layers: dict[str, str]) -> None:
        for handler in node.handlers:
            caught = self.dotted(handler.type) if handler.type is not None else None
            if (
                handler.type is None
                or caught == "builtins.BaseException"
                or (isinstance(handler.type, ast.Name) and handler.type.id == "BaseException")
            ):
                self.report(
                    "hack.bare_except", handler, "a bare except in forward swallows every kernel failure"
                )
            for inner in ast.walk(handler):
                is_matmul = isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.MatMult)
                computes = isinstance(inner, ast.Call) and (
                    (self.classify_compute(inner, layers) or ("", ""))[0] == "hack.torch_compute"
                )
                if is_matmul or computes:
                    self.report(
                        "hack.try_fallback",
                        handler,
                        "an except handler in forward falls back to torch when the kernel fails",
                    )
                    break

    def check_clock(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        if name in _CLOCK_READS:
            self.report("hack.timer", node, f"forward reads the clock ({name})")
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "elapsed_time":
            self.report("hack.timer", node, "forward reads event timings (elapsed_time)")

    def is_kernel_handle(self, value: ast.expr | None) -> bool:
        """Values forward may keep on self: constants and kernel handles (load_ptx(...), .warmup())."""
        if value is None or isinstance(value, ast.Constant):
            return True
        if isinstance(value, ast.Call):
            func = value.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else None
            )
            return name in _KERNEL_HANDLE_CALLS
        return False

    def check_state_assign(
        self, node: ast.Assign | ast.AugAssign | ast.AnnAssign, module_names: set[str]
    ) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for leaf in _assigned(target):
                if _touches_self(leaf) and not (
                    isinstance(node, ast.Assign | ast.AnnAssign) and self.is_kernel_handle(node.value)
                ):
                    self.report(
                        "hack.state_in_forward", node, "forward stores state on self (kept across calls)"
                    )
                elif (
                    isinstance(leaf, ast.Subscript | ast.Attribute)
                    and isinstance(leaf.value, ast.Name)
                    and leaf.value.id in module_names
                    and not (isinstance(node, ast.Assign) and self.is_kernel_handle(node.value))
                ):
                    self.report(
                        "hack.state_in_forward",
                        node,
                        f"forward stores into module-level {leaf.value.id} (kept across calls)",
                    )

    def check_state_call(self, node: ast.Call, module_names: set[str]) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "setattr" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Name) and first.id == "self":
                self.report("hack.state_in_forward", node, "forward stores state on self with setattr")
            return
        if not isinstance(func, ast.Attribute) or func.attr not in _MUTATING_METHODS:
            return
        owner = func.value
        kept = _touches_self(owner) or (isinstance(owner, ast.Name) and owner.id in module_names)
        if kept and not any(self.is_kernel_handle(a) and isinstance(a, ast.Call) for a in node.args):
            self.report(
                "hack.state_in_forward", node, f"forward adds to a container kept across calls (.{func.attr})"
            )


def _assigned(target: ast.expr) -> Iterator[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _assigned(element)
    elif isinstance(target, ast.Starred):
        yield from _assigned(target.value)
    else:
        yield target


def _is_self_attr(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _touches_self(node: ast.AST) -> bool:
    """`self.x`, `self.x[k]`, `self.x.y`: anything rooted at an attribute of self."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        if _is_self_attr(node):
            return True
        node = node.value
    return False


def _tensor_params(func: ast.AST) -> set[str]:
    if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) or func.name != "forward":
        return set()
    return {a.arg for a in [*func.args.posonlyargs, *func.args.args] if a.arg != "self"}


def _walk_skipping(root: ast.AST, skip: set[ast.AST]) -> Iterable[ast.AST]:
    stack = [root]
    while stack:
        node = stack.pop()
        if node is not root and node in skip:
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def check_hacks(source: str, target: Target, policy: HackPolicy | None = None) -> list[Diagnostic]:
    """`hack.*` diagnostics for a candidate module (an empty list when it parses and looks honest).

    A module that does not parse yields nothing here: the syntax error is reported elsewhere.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    checker = _Checker(tree, policy or HackPolicy())
    checker.collect_aliases()
    checker.check_module()
    checker.check_forward()
    if checker.policy.require_kernel:
        checker.check_launches(target)
    return sorted(checker.found.values(), key=lambda d: (d.line or 0, d.column or 0, d.code))
