"""Worker processes that run problem and candidate code (standard library + torch only).

    python -m sandbox.runtime.worker reference   # draws inputs, computes expected outputs, judges
    python -m sandbox.runtime.worker candidate   # runs ModelNew on the inputs it is given

The reference worker never loads candidate code and keeps the secret seeds and expected outputs to
itself; the candidate worker gets its own copies of each draw's inputs and never sees seeds or expected
outputs. Tensors travel draw by draw through `exchange.py` (CUDA IPC on a GPU, files on the CPU).

Messages (one JSON object per line, see `protocol.py`):
  service → reference:  {"problem": path, "seeds": [...], "init_seed": int, "device": "cpu"|"cuda",
                         "exchange": dir}
  reference → service:  {"event": "ready", "device": str, "draws": n, "gpu": bool}
  service → candidate:  {"candidate": path, "exchange": dir, "device": ..., "target": ...}
                        (sent at once: the candidate worker creates its CUDA context meanwhile)
  service → candidate:  {"cmd": "build"}  (once the reference is ready and has written the weights)
  candidate → service:  {"event": "ready", "device": str}
then for each draw i (and a determinism re-run of seed 0):
  service → reference:  {"cmd": "draw", "index": i, "seed": k}   → {"event": "draw_ready", "index": i}
  service → candidate:  {"cmd": "run", "index": i, "keep": bool}
  candidate → service:  {"event": "ran", "index": i, "outputs": [{"shape", "dtype"}] | {"error": str},
                         "mutated": bool, "aliased": bool}
  service → reference:  {"cmd": "check", "index": i, "outputs": ...}  → {"event": "checked", "passed", ...}
then, on a GPU, timing rounds alternate between the two workers:
  service → either:     {"cmd": "time", "variant": "eager"|"compile"|"candidate", "trials": n, "warmup": n}
  either → service:     {"event": "times", "ms": [...]}
and the speed-of-light bound of the problem on this GPU (peaks measured once per GPU model, cached):
  service → reference:  {"cmd": "bound", "peaks_cache": path} → {"event": "bound", "min_ms": ..., ...}
and finally {"cmd": "exit"}. Any answer may instead be
{"event": "error", "outcome": ..., "message": ..., "traceback": ...}.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from sandbox.runtime.protocol import Channel

__all__ = ["main"]

INIT_FILE = "init.pt"


def _error(channel: Channel, outcome: str, message: str, exc: BaseException | None = None) -> int:
    tb = "".join(traceback.format_exception(exc)) if exc is not None else None
    channel.send(event="error", outcome=outcome, message=message, traceback=tb)
    return 1


def _pick_device(requested: str) -> Any:
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch sees no GPU")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _to_device(value: Any, device: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v, device) for v in value)
    return value


def _clone(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return "cpu"


def run_reference(channel: Channel) -> int:
    import torch

    from sandbox.runtime.compare import compare_outputs, flatten_outputs, judge_note
    from sandbox.runtime.exchange import export_draw, read_cpu_outputs
    from sandbox.runtime.inputs import TRANSFORMS
    from sandbox.runtime.limits import make_undumpable
    from sandbox.runtime.loader import import_file

    make_undumpable()  # it holds the seeds and expected outputs; the candidate may share its namespaces

    job = channel.receive()
    exchange = Path(job["exchange"])
    seeds = [int(seed) for seed in job["seeds"]]
    transforms = [str(name) for name in job.get("transforms", []) if name in TRANSFORMS]
    try:
        device = _pick_device(job.get("device", "auto"))
        problem = import_file(Path(job["problem"]), "kernelwright_problem")
        torch.manual_seed(int(job["init_seed"]))
        init_inputs = list(problem.get_init_inputs())
        with device:  # parameters and inputs are created on the device directly: no host-side draws
            model = problem.Model(*init_inputs).to(device).eval()
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        return _error(channel, "infrastructure", f"the reference problem failed to load: {exc!r}", exc)
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    torch.save({"init_inputs": init_inputs, "state_dict": state}, exchange / INIT_FILE)
    gpu = device.type == "cuda"
    channel.send(event="ready", device=_device_name(device), draws=len(seeds), gpu=gpu)

    held: dict[int, tuple[list[Any], list[Any]]] = {}  # index -> (expected, shared copies kept alive)
    variants: dict[str, Any] = {"eager": model}
    timing_inputs: list[Any] | None = None
    timing = _Timing(channel, device)

    def draw(seed: int) -> list[Any]:
        torch.manual_seed(seed)
        with device, torch.no_grad():
            inputs = [_to_device(x, device) for x in problem.get_inputs()]
            for name in transforms:  # fixes a curated suite applies (e.g. signed inputs)
                inputs = [TRANSFORMS[name](x) for x in inputs]
        return inputs

    while True:
        try:
            command = channel.receive()
        except EOFError:
            return 0
        kind = command.get("cmd")
        if kind == "draw":
            index, seed = int(command["index"]), seeds[int(command["seed"])]
            try:
                inputs = draw(seed)
                shared = _clone(inputs)  # the candidate's copies, made before the reference touches inputs
                with device, torch.no_grad():
                    expected = flatten_outputs(model(*inputs))
                del inputs  # peak memory: shared copies + expected + output buffers (multi-GB problems)
                if expected is None:
                    return _error(
                        channel, "infrastructure", "the reference Model.forward did not return tensors"
                    )
                keep = export_draw(exchange, index, shared, expected, gpu)
            except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
                return _error(channel, "infrastructure", f"the reference failed on a draw: {exc!r}", exc)
            held[index] = (expected, keep)  # the shared copies must outlive the candidate's run
            channel.send(event="draw_ready", index=index)
        elif kind == "check":
            index = int(command["index"])
            expected, keep = held.pop(index)
            buffers = keep[1] if keep else []
            result = _check(
                expected,
                command.get("outputs"),
                buffers,
                exchange,
                index,
                gpu,
                compare_outputs,
                read_cpu_outputs,
            )
            del keep, buffers
            (exchange / f"draw_{index}.pkl").unlink(missing_ok=True)
            (exchange / f"draw_{index}.pt").unlink(missing_ok=True)
            if note := judge_note():
                result["judge_note"] = note
            channel.send(event="checked", index=index, **result)
        elif kind == "bound":
            if timing_inputs is None:
                timing_inputs = draw(seeds[0])
            try:
                from sandbox.runtime.bounds import load_or_measure_peaks, problem_bound

                cache = command.get("peaks_cache")
                peaks = load_or_measure_peaks(device, Path(cache) if cache else None)
                bound = problem_bound(model, _clone(timing_inputs), peaks)
            except Exception as exc:  # noqa: BLE001 - no bound is a note, not a failure
                channel.send(event="error", outcome="infrastructure", message=f"no bound: {exc!r}")
                continue
            channel.send(event="bound", **bound)
        elif kind == "time":
            if timing_inputs is None:
                timing_inputs = draw(seeds[0])  # drawn again once correctness is settled
            if command.get("variant") == "compile" and "compile" not in variants:
                try:
                    variants["compile"] = torch.compile(model)
                except Exception as exc:  # noqa: BLE001 - a baseline that cannot be built is reported
                    channel.send(
                        event="error", outcome="infrastructure", message=f"torch.compile failed: {exc!r}"
                    )
                    continue
            times = timing.measure(command, variants, timing_inputs)
            if times is not None:
                channel.send(event="times", variant=command.get("variant"), ms=times)
        else:
            return 0


def _check(
    expected: list[Any],
    meta: Any,
    buffers: list[Any],
    exchange: Path,
    index: int,
    gpu: bool,
    compare: Any,
    read_cpu_outputs: Any,
) -> dict[str, Any]:
    """Judge one draw from the candidate's declared output layout and the data it handed over."""
    if not isinstance(meta, list):
        reason = meta.get("error") if isinstance(meta, dict) else "no outputs"
        return {"passed": False, "kind": "wrong_shape", "message": f"forward returned {reason}"}
    if len(meta) != len(expected):
        return {
            "passed": False,
            "kind": "wrong_shape",
            "message": f"forward returned {len(meta)} tensors, expected {len(expected)}",
        }
    for position, (declared, ref) in enumerate(zip(meta, expected, strict=True)):
        label = f"output {position}" if len(expected) > 1 else "output"
        if list(declared.get("shape", [])) != list(ref.shape):
            return {
                "passed": False,
                "kind": "wrong_shape",
                "message": f"{label} has shape {tuple(declared.get('shape', []))}, "
                f"expected {tuple(ref.shape)}",
            }
        if declared.get("dtype") != str(ref.dtype).removeprefix("torch."):
            return {
                "passed": False,
                "kind": "wrong_dtype",
                "message": f"{label} has dtype {declared.get('dtype')}, expected {ref.dtype}",
            }
    try:
        actual = buffers if gpu else read_cpu_outputs(exchange, index)
    except Exception as exc:  # noqa: BLE001 - whatever the candidate wrote, it becomes a verdict
        return {
            "passed": False,
            "kind": "runtime_error",
            "message": f"the candidate's outputs are unreadable: {exc!r}",
        }
    result = compare(expected, actual)
    return {
        "passed": result.passed,
        "kind": result.kind,
        "message": result.message,
        "max_abs_error": result.max_abs_error,
        "mean_abs_error": result.mean_abs_error,
        "max_rel_error": result.max_rel_error,
        "rel_l2_error": result.rel_l2_error,
    }


class _Timing:
    """Answers `time` commands: fresh input copies per trial, L2 flushed, device events."""

    def __init__(self, channel: Channel, device: Any) -> None:
        self._channel = channel
        self._device = device
        self._flush: Any = None
        self.calls = 0  # calls made by the last measure(), warm-up included

    def measure(
        self, command: dict[str, Any], variants: dict[str, Any], inputs: list[Any]
    ) -> list[float] | None:
        """Time one chunk of trials; None when it could not (the error was already sent)."""
        from sandbox.runtime.timing import L2Flusher, time_trials

        variant = str(command.get("variant"))
        fn = variants.get(variant)
        if fn is None or self._device.type != "cuda":
            self._channel.send(
                event="error", outcome="infrastructure", message=f"cannot time {variant!r} here"
            )
            return None
        self._flush = self._flush or L2Flusher(self._device)
        try:
            times, self.calls = time_trials(
                fn,
                lambda: _clone(inputs),
                trials=int(command["trials"]),
                warmup=int(command.get("warmup", 0)),
                device=self._device,
                flush=self._flush,
            )
            return times
        except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
            self._channel.send(
                event="error",
                outcome=_classify(exc),
                message=f"timing {variant} failed: {exc!r}",
                traceback="".join(traceback.format_exception(exc)),
            )
            return None


def _aliases(outputs: list[Any], inputs: list[Any]) -> bool:
    import torch

    def storage(t: Any) -> int | None:
        return t.untyped_storage().data_ptr() if isinstance(t, torch.Tensor) else None

    out_ptrs = [storage(t) for t in outputs]
    in_ptrs = {storage(t) for t in inputs} - {None}
    return len(set(out_ptrs)) != len(out_ptrs) or any(p in in_ptrs for p in out_ptrs)


def run_candidate(channel: Channel) -> int:
    import torch

    from sandbox.runtime.compare import flatten_outputs
    from sandbox.runtime.exchange import import_inputs, write_outputs
    from sandbox.runtime.guards import RuntimeGuard
    from sandbox.runtime.loader import import_file

    job = channel.receive()
    exchange = Path(job["exchange"])
    device = _pick_device(job.get("device", "auto"))
    gpu = device.type == "cuda"
    if gpu:  # create the CUDA context now, while the reference worker is still getting ready
        torch.empty(1, device=device)
    if channel.receive().get("cmd") != "build":  # the reference has written the weights by then
        return 0
    bundle = torch.load(exchange / INIT_FILE, weights_only=True)
    # anti-hack: snapshot timers/sync/our code and count launches from before the candidate is imported
    guard = RuntimeGuard.arm(Path(job["candidate"]).read_text(encoding="utf-8", errors="replace"))
    target = job.get("target")  # "ptx" | "cuda" | "triton"; None: a launch of either kind counts
    try:
        module = import_file(Path(job["candidate"]), "kernelwright_candidate")
        model_cls = getattr(module, "ModelNew", None)
        if model_cls is None:
            return _error(channel, "runtime_error", "the candidate module defines no ModelNew")
        model = model_cls(*bundle["init_inputs"]).to(device).eval()
        own = model.state_dict()
        weights = {k: v for k, v in bundle["state_dict"].items() if k in own and own[k].shape == v.shape}
        if weights:
            model.load_state_dict(weights, strict=False)
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        return _error(channel, _classify(exc), f"building ModelNew failed: {exc!r}", exc)
    del bundle
    channel.send(event="ready", device=_device_name(device))

    timing_inputs: list[Any] | None = None
    timing = _Timing(channel, device)

    while True:
        try:
            command = channel.receive()
        except EOFError:
            return 0
        kind = command.get("cmd")
        if kind == "run":
            index = int(command["index"])
            try:
                given, shared, buffers = import_inputs(exchange, index, gpu, device)
                if command.get("keep") and timing_inputs is None:
                    timing_inputs = _clone(shared)
                with torch.no_grad():
                    result = guard.call(model, given, target)
                if gpu:
                    torch.cuda.synchronize(device)
                flat = flatten_outputs(result)
                aliased = flat is not None and _aliases(flat, given)
                mutated = any(
                    isinstance(a, torch.Tensor) and not torch.equal(a, b)
                    for a, b in zip(given, shared, strict=True)
                )
                meta: Any
                if flat is None:
                    meta = {"error": f"a {type(result).__name__}, not tensors"}
                else:
                    meta = [
                        {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for t in flat
                    ]
                    write_outputs(exchange, index, flat, buffers, gpu)
                del given, shared, buffers, result, flat
            except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
                if guard.finding() is not None:  # e.g. a meta/lazy output that broke reading it back
                    return _error(channel, "hack_suspected", f"{guard.finding()} (then: {exc!r})", exc)
                return _error(channel, _classify(exc), f"ModelNew.forward failed: {exc!r}", exc)
            suspicion = guard.finding()  # kernel never ran, patched timers, live threads, lazy/fake outputs
            if suspicion is not None:
                return _error(channel, "hack_suspected", suspicion)
            channel.send(event="ran", index=index, outputs=meta, mutated=mutated, aliased=aliased)
        elif kind == "time" and timing_inputs is not None:
            # timed calls go to the model itself (a guard per call would add its own overhead to every
            # trial); the launch counter, read around the chunk, must show a launch for every call
            launched = guard.kernel_launches(target)
            times = timing.measure(command, {"candidate": model}, timing_inputs)
            if times is None:
                continue
            calls = timing.calls
            if target == "extension":  # no counter to read: one more call, profiled, on the timed inputs
                try:
                    with torch.no_grad():
                        guard.call(model, timing_inputs, target)
                except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
                    failed = f"ModelNew.forward failed after timing: {exc!r}"
                    return _error(channel, _classify(exc), failed, exc)
            if target in ("ptx", "cuda", "triton") and guard.kernel_launches(target) - launched < calls:
                return _error(
                    channel,
                    "hack_suspected",
                    f"while being timed: {calls} calls launched only "
                    f"{guard.kernel_launches(target) - launched} kernels: the custom kernel did not run "
                    "on every call",
                )
            suspicion = guard.finding()
            if suspicion is not None:
                return _error(channel, "hack_suspected", f"while being timed: {suspicion}")
            channel.send(event="times", variant="candidate", ms=times)
        else:
            return 0


def _classify(exc: BaseException) -> str:
    """Compile-time failures raised at first launch (Triton JIT, driver JIT, nvcc) are compile errors."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"CompilationError", "KernelCompileError", "CompileTimeAssertionFailure", "SyntaxError"}:
        return "compile_error"
    return "runtime_error"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    channel = Channel.take_over_stdio()
    roles = {"reference": run_reference, "candidate": run_candidate}
    if len(args) != 1 or args[0] not in roles:
        return _error(channel, "infrastructure", f"usage: worker {{{'|'.join(roles)}}}")
    try:
        return roles[args[0]](channel)
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        return _error(channel, "infrastructure", f"worker failure: {exc!r}", exc)


if __name__ == "__main__":
    sys.exit(main())
