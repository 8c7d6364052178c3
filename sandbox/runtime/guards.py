"""Runtime anti-hack guards for the candidate worker (standard library + torch only).

Generated code is hostile: it runs in the same process as the code that times it and collects its
outputs, so it can patch timers, start threads that finish the work after the clock stopped, never run
its kernel at all, or hand back a tensor-like object that computes lazily. The judging itself happens in
the reference worker, out of the candidate's reach; what these guards protect is the evidence the
candidate worker reports: that the candidate's own kernel ran on every call, that the clocks and sync
functions the timing uses are the genuine ones, that nothing keeps running behind our back, and that
forward returned plain, materialised tensors.

    guard = RuntimeGuard.arm(candidate_source)   # before the candidate module is imported
    result = guard.call(model, inputs, "triton")  # counts launches, checks the output
    message = guard.finding()                    # None, or why this is suspected of cheating

None of this is a sandbox: an in-process adversary can defeat any in-process check. These make the
known cheats fail loudly; the static policy (`sandbox.hack_checks`) and process isolation do the rest.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sandbox.runtime.extension_kernels import device_stubs, is_extension_kernel, mapped_libraries

__all__ = ["RuntimeGuard", "check_output"]

_MISSING = object()

# (module name, dotted attribute path) of what timing and output collection rely on.
_WATCHED: tuple[tuple[str, str], ...] = (
    *(
        ("time", name)
        for name in (
            "perf_counter",
            "perf_counter_ns",
            "time",
            "time_ns",
            "monotonic",
            "monotonic_ns",
            "process_time",
            "sleep",
        )
    ),
    *(
        ("builtins", name)
        for name in ("isinstance", "issubclass", "type", "len", "id", "getattr", "hasattr", "zip", "any")
    ),
    *(
        ("torch", name)
        for name in (
            "allclose",
            "equal",
            "isclose",
            "isfinite",
            "isnan",
            "where",
            "abs",
            "save",
            "load",
            "no_grad",
            "empty",
            "empty_like",
            "Tensor",
            "testing.assert_close",
            "linalg.vector_norm",
        )
    ),
    *(
        ("torch", f"Tensor.{name}")
        for name in (
            "__eq__",
            "__ne__",
            "__sub__",
            "__torch_function__",
            "__torch_dispatch__",
            "clone",
            "detach",
            "to",
            "cpu",
            "cuda",
            "copy_",
            "contiguous",
            "untyped_storage",
            "data_ptr",
            "numel",
            "item",
            "tolist",
            "equal",
            "allclose",
            "is_floating_point",
        )
    ),
    *(
        ("torch", f"cuda.{name}")
        for name in (
            "synchronize",
            "Event",
            "Event.record",
            "Event.synchronize",
            "Event.elapsed_time",
            "Event.query",
            "Event.wait",
            "current_stream",
            "default_stream",
            "set_stream",
            "Stream",
            "stream",
            "is_available",
            "current_device",
        )
    ),
)

# What the extension launch check runs under (torch imports it with itself).
_PROFILER_WATCHED = (("torch.profiler", "profile"), ("torch.profiler", "ProfilerActivity"))

# Triton entry points a launch goes through (snapshotted after our counters are installed).
_TRITON_WATCHED = (
    ("triton.knobs", "runtime.launch_enter_hook"),
    ("triton.runtime.jit", "JITFunction.run"),
    ("triton.runtime.jit", "KernelInterface.__getitem__"),
    ("triton.runtime.interpreter", "GridExecutor.__call__"),
    ("triton.runtime.interpreter", "InterpretedFunction.run"),
)


def _kernel_names(prof: Any) -> list[str]:
    """Names of the GPU kernels a finished `torch.profiler.profile` recorded (copies and memsets left
    out)."""
    return [
        str(event.name)
        for event in prof.events()
        if getattr(event.device_type, "name", None) == "CUDA"
        and not str(event.name).startswith(("Memcpy", "Memset"))
    ]


def _resolve(root: object, dotted: str) -> object:
    """The attribute as stored (`inspect.getattr_static`: classmethods and properties keep one identity)."""
    value = root
    for part in dotted.split("."):
        try:
            value = inspect.getattr_static(value, part)
        except AttributeError:
            return _MISSING
    return value


def _own_runtime_modules() -> Iterator[tuple[str, Any]]:
    """Our worker-side modules, including the worker itself when it runs as `__main__`."""
    for name, module in list(sys.modules.items()):
        if module is None:
            continue
        spec = getattr(module, "__spec__", None)
        real = getattr(spec, "name", name) if spec is not None else name
        if real == "sandbox.runtime" or str(real).startswith("sandbox.runtime."):
            yield name, module


def _module_callables(module: Any) -> Iterator[str]:
    """Functions and classes of a module, and the methods defined on its own classes (dotted names)."""
    for attr, value in list(vars(module).items()):
        if attr.startswith("__"):
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            yield attr
        if inspect.isclass(value) and value.__module__ == module.__name__:
            for member, inner in list(vars(value).items()):
                if inspect.isfunction(inner) or isinstance(inner, classmethod | staticmethod | property):
                    yield f"{attr}.{member}"


class RuntimeGuard:
    """Snapshots what a candidate must not touch, counts kernel launches, and reports what changed.

    Slotted, so that a candidate reaching the guard object cannot shadow its methods per instance.
    """

    __slots__ = (
        "_calls",
        "_findings",
        "_hooks",
        "_identities",
        "_libraries",
        "_profiler_sees",
        "_silent",
        "_stubs",
        "_threads",
        "_triton_launches",
        "_triton_streams",
        "_undo",
    )

    def __init__(self) -> None:
        self._identities: dict[str, tuple[Callable[[], object], object]] = {}
        self._threads: set[int] = set()
        self._triton_launches = 0
        self._triton_streams: set[int] = set()
        self._hooks: list[tuple[str, Callable[[], bool]]] = []
        self._calls = 0
        self._findings: list[str] = []
        self._silent: list[int] = []  # forward calls (1-based) that launched nothing
        self._undo: list[Callable[[], None]] = []
        self._libraries: set[str] = set()  # shared objects mapped before the candidate was imported
        self._stubs: set[str] = set()  # kernels the candidate's extensions define (`extension_kernels`)
        self._profiler_sees: bool | None = None  # whether the profiler records kernels here at all

    @classmethod
    def arm(cls, candidate_source: str | None = None) -> RuntimeGuard:
        """Install launch counters and take the snapshot; call before importing the candidate.

        Triton is imported first when the candidate's source mentions it, and our launch API when it
        mentions `sandbox`, so that their launch paths are counted and snapshotted before the candidate
        could patch them; other candidates do not pay for those imports.
        """
        guard = cls()
        if (
            candidate_source is not None
            and "triton" in candidate_source
            and importlib.util.find_spec("triton") is not None
        ):
            guard._install_triton_counters()
        if candidate_source is None or "sandbox" in candidate_source:
            # The launch API (and its counter) is snapshotted before the candidate can reach it.
            importlib.import_module("sandbox.runtime.launch")
        guard._snapshot()
        guard._libraries = mapped_libraries()
        return guard

    # --- launch counting -------------------------------------------------------------------------

    def _on_triton_launch(self, metadata: object = None) -> None:
        """Triton's launch_enter_hook (compiled kernels on a GPU): count, and note the stream.

        Triton's launcher passes the launch's metadata (a LazyDict naming the loaded function); a
        candidate calling the hook chain itself to fake launches typically passes nothing like it.
        """
        data = getattr(metadata, "data", None)
        if not isinstance(data, dict) or data.get("function") is None:
            return
        self._triton_launches += 1
        stream = data.get("stream")
        if isinstance(stream, int):
            self._triton_streams.add(stream)

    def _install_triton_counters(self) -> None:
        import triton

        knobs = getattr(triton, "knobs", None)
        interpreted = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0") or bool(
            getattr(getattr(knobs, "runtime", None), "interpret", False)
        )
        runtime = getattr(knobs, "runtime", None)
        chain = getattr(runtime, "launch_enter_hook", None)
        # Not under the interpreter, which never calls launch hooks: there they would only count fakes.
        if not interpreted and chain is not None and hasattr(chain, "add") and hasattr(chain, "calls"):
            # triton >= 3.5 on a GPU: a HookChain the C launcher calls with each launch's metadata.
            chain.add(self._on_triton_launch)
            self._hooks.append(("Triton's launch hook", lambda: self._on_triton_launch in chain.calls))
            self._undo.append(lambda: chain.remove(self._on_triton_launch))
        elif not interpreted:
            # Older Triton: one optional callable, on triton.knobs.runtime (3.3/3.4) or CompiledKernel.
            owner: Any = runtime
            if owner is None or not hasattr(owner, "launch_enter_hook"):
                owner = importlib.import_module("triton.compiler.compiler").CompiledKernel
            previous = owner.launch_enter_hook

            def enter(metadata: object = None) -> None:
                self._on_triton_launch(metadata)
                if previous is not None:
                    previous(metadata)

            owner.launch_enter_hook = enter
            self._hooks.append(("Triton's launch hook", lambda: owner.launch_enter_hook is enter))

            def unhook() -> None:
                if owner.launch_enter_hook is enter:
                    owner.launch_enter_hook = previous

            self._undo.append(unhook)
        if interpreted:
            # The interpreter calls no launch hook: every launch (kernel[grid](...), autotuner runs)
            # goes through GridExecutor.__call__, which runs the whole grid on the host.
            interpreter = importlib.import_module("triton.runtime.interpreter")
            executor = interpreter.GridExecutor
            original = executor.__call__
            guard = self

            def counted_call(runner: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(runner, *args, **kwargs)
                guard._triton_launches += 1
                return result

            executor.__call__ = counted_call

            def restore() -> None:
                if executor.__call__ is counted_call:
                    executor.__call__ = original

            self._undo.append(restore)
            self._hooks.append(
                ("the Triton interpreter's launch counter", lambda: executor.__call__ is counted_call)
            )

    def kernel_launches(self, target: str | None = None) -> int:
        """Kernels launched so far: through `sandbox.runtime` (ptx/cuda), Triton, or both (None)."""
        api = sys.modules.get("sandbox.runtime.launch")
        api_count = int(getattr(api, "launch_count", [0])[0]) if api is not None else 0
        if target in ("ptx", "cuda"):
            return api_count
        if target == "triton":
            return self._triton_launches
        return api_count + self._triton_launches

    def call(self, model: Callable[..., Any], args: Sequence[Any], target: str | None = None) -> Any:
        """`model(*args)`, noting whether it launched a kernel of `target`'s kind and what it returned.

        Every call must launch: a forward that serves a cached or torch-computed result on later calls
        launches nothing there. `target` is "ptx", "cuda", "triton", or None for either kind; for
        "extension" (a torch extension's kernels, launched from C++) the call runs under the profiler
        and must launch a kernel the extension defines. Any other target is not held to it.
        """
        if target == "extension":
            result, own = self._call_profiled(model, args)
            silent = own == 0
        else:
            counted = target in (None, "ptx", "cuda", "triton")
            before = self.kernel_launches(target)
            result = model(*args)
            silent = counted and self.kernel_launches(target) == before
        self._calls += 1
        if silent:
            self._silent.append(self._calls)
        problem = check_output(result)
        if problem is not None:
            self._findings.append(f"forward call {self._calls}: {problem}")
        return result

    def _call_profiled(self, model: Callable[..., Any], args: Sequence[Any]) -> tuple[Any, int | None]:
        """`model(*args)` under the profiler, and how many kernels it launched that an extension built
        since arming defines (None where the profiler records no kernels: no evidence either way)."""
        import torch
        from torch.profiler import ProfilerActivity, profile

        for path in mapped_libraries() - self._libraries:
            self._libraries.add(path)
            self._stubs.update(device_stubs(Path(path)))
        if self._profiler_sees is None:  # once: a torch kernel must show, or the profiler is blind here
            with profile(activities=[ProfilerActivity.CUDA]) as probe:
                torch.ones(1, device="cuda").add_(1)
                torch.cuda.synchronize()
            self._profiler_sees = bool(_kernel_names(probe))
        if not self._profiler_sees:
            return model(*args), None
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            result = model(*args)
            torch.cuda.synchronize()
        return result, sum(1 for name in _kernel_names(prof) if is_extension_kernel(name, self._stubs))

    def finding(self) -> str | None:
        """One message for everything suspicious seen so far (calls and `violations()`), or None."""
        found = [*dict.fromkeys(self._findings), *self.violations()]
        if self._silent:
            calls = ", ".join(map(str, self._silent))
            found.insert(
                0,
                f"the custom kernel never ran: forward call(s) {calls} of {self._calls} launched no kernel "
                "of its own",
            )
        if not found:
            return None
        shown = "; ".join(found[:5])
        return shown + (f"; and {len(found) - 5} more" if len(found) > 5 else "")

    def disarm(self) -> None:
        """Remove the launch counters this guard installed (a reused worker arms a fresh guard)."""
        while self._undo:
            self._undo.pop()()

    # --- snapshot and violations ----------------------------------------------------------------

    def _watch(self, label: str, read: Callable[[], object]) -> None:
        self._identities[label] = (read, read())

    def _snapshot(self) -> None:
        for module_name, dotted in _WATCHED:
            module = sys.modules.get(module_name)
            if module is None and module_name != "torch":
                module = importlib.import_module(module_name)
            if module is None:
                continue
            self._watch(f"{module_name}.{dotted}", functools.partial(_resolve, module, dotted))
        for module_name, dotted in (*_PROFILER_WATCHED, *_TRITON_WATCHED):
            module = sys.modules.get(module_name)
            if module is not None:
                self._watch(f"{module_name}.{dotted}", functools.partial(_resolve, module, dotted))
        api = sys.modules.get("sandbox.runtime.launch")
        if api is not None:
            self._watch(
                "sandbox.runtime.launch.launch_count", functools.partial(_resolve, api, "launch_count")
            )
        for name, module in _own_runtime_modules():
            for attr in _module_callables(module):
                self._watch(f"{name}.{attr}", functools.partial(_resolve, module, attr))
        self._threads = {t.ident for t in threading.enumerate() if t.ident is not None}

    def violations(self) -> list[str]:
        """What the candidate changed: patched functions, counters removed, threads left running."""
        found = [
            f"{label} was replaced (patched timing, sync or checking code)"
            for label, (read, original) in self._identities.items()
            if read() is not original
        ]
        found += [f"{what} was removed" for what, present in self._hooks if not present()]
        alive = [
            t
            for t in threading.enumerate()
            if t.ident is not None and t.ident not in self._threads and t.is_alive()
        ]
        if alive:
            names = ", ".join(sorted(t.name for t in alive))
            found.append(f"the candidate left {len(alive)} thread(s) running ({names})")
        found += self._stream_violations()
        return found

    def _stream_violations(self) -> list[str]:
        """On a GPU: Triton launches must go to the stream the worker runs (and times) forward on."""
        if not self._triton_streams:
            return []
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available():
            return []
        current = int(torch.cuda.current_stream().cuda_stream)
        others = sorted(s for s in self._triton_streams if s != current)
        if not others:
            return []
        return [f"Triton kernels were launched on {len(others)} stream(s) other than the current one"]


def check_output(value: object) -> str | None:
    """Why `value` is not plain, materialised tensor output (None when it is, or is no tensor at all).

    Non-tensors (None, ints) are left to the comparison, which reports a wrong shape. What is caught
    here: tensor subclasses and tensor imitations (which can compute lazily when the worker reads them,
    after the timer stopped), meta/fake tensors, and tensors without memory behind them.
    """
    import torch

    if isinstance(value, tuple | list):
        for index, item in enumerate(value):
            problem = check_output(item)
            if problem is not None:
                return f"output {index}: {problem}"
        return None
    if not isinstance(value, torch.Tensor):
        if hasattr(value, "__torch_function__") or hasattr(value, "__torch_dispatch__"):
            return f"forward returned a {type(value).__name__} that imitates a tensor"
        return None
    if type(value) is not torch.Tensor:
        return f"forward returned a {type(value).__name__} (a torch.Tensor subclass), not a plain tensor"
    if value.is_meta or value.device.type not in ("cpu", "cuda"):
        return f"forward returned a tensor on the {value.device.type} device, with no data"
    if value.layout != torch.strided:
        return f"forward returned a {value.layout} tensor, not a dense one"
    try:
        storage = value.untyped_storage()
    except (RuntimeError, NotImplementedError) as exc:
        return f"forward returned a tensor without storage ({exc})"
    if value.numel() > 0 and storage.data_ptr() == 0:
        return "forward returned a tensor with no memory behind it"
    return None
