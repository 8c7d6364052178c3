"""Worker processes that run problem and candidate code (standard library + torch only).

    python -m sandbox.runtime.worker reference   # draws inputs, computes expected outputs, judges
    python -m sandbox.runtime.worker candidate   # runs ModelNew on the inputs it is given

The reference worker never loads candidate code and keeps the secret seeds and expected outputs to
itself: it writes only the inputs (and init inputs and weights) into the candidate's scratch folder,
waits, then reads the candidate's outputs back (`torch.load(weights_only=True)`: no pickled code) and
compares. The candidate worker never sees seeds or expected outputs.

Messages (one JSON object per line, see `protocol.py`):
  service → reference:  {"problem": path, "seeds": [...], "init_seed": int, "device": "cpu"|"cuda",
                         "exchange": dir}
  reference → service:  {"event": "ready", "device": str, "draws": n, "gpu": bool}
  service → candidate:  {"candidate": path, "exchange": dir, "device": ...}
  candidate → service:  {"event": "done", "device": str}      (outputs written to the exchange folder)
  service → reference:  {"cmd": "judge"}
  reference → service:  {"event": "verdict", "outcome": str, "message": str, "draws": [...]}
then, on a GPU, timing rounds alternate between the two workers:
  service → either:     {"cmd": "time", "variant": "eager"|"compile"|"candidate", "trials": n, "warmup": n}
  either → service:     {"event": "times", "ms": [...]}   or {"event": "error", ...}
  service → either:     {"cmd": "exit"}
Any message may instead be {"event": "error", "outcome": ..., "message": ..., "traceback": ...}.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from sandbox.runtime.protocol import Channel

__all__ = ["main"]

INPUTS_FILE = "inputs.pt"
OUTPUTS_FILE = "outputs.pt"


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

    from sandbox.runtime.compare import compare_outputs, flatten_outputs
    from sandbox.runtime.loader import import_file

    job = channel.receive()
    exchange = Path(job["exchange"])
    try:
        device = _pick_device(job.get("device", "auto"))
        problem = import_file(Path(job["problem"]), "kernelwright_problem")
        torch.manual_seed(int(job["init_seed"]))
        init_inputs = list(problem.get_init_inputs())
        with device:  # parameters and inputs are created on the device directly: no host-side draws
            model = problem.Model(*init_inputs).to(device).eval()
        draws_inputs: list[list[Any]] = []
        expected: list[list[torch.Tensor]] = []
        with torch.no_grad():
            for seed in job["seeds"]:
                torch.manual_seed(int(seed))
                with device:
                    inputs = [_to_device(x, device) for x in problem.get_inputs()]
                outputs = flatten_outputs(model(*[_clone(x) for x in inputs]))
                if outputs is None:
                    return _error(
                        channel, "infrastructure", "the reference Model.forward did not return tensors"
                    )
                draws_inputs.append([_to_device(x, "cpu") for x in inputs])
                expected.append([t.detach().to("cpu") for t in outputs])
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        return _error(channel, "infrastructure", f"the reference problem failed to run: {exc!r}", exc)
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    torch.save(
        {"init_inputs": init_inputs, "draws": draws_inputs, "state_dict": state}, exchange / INPUTS_FILE
    )
    channel.send(event="ready", device=_device_name(device), draws=len(expected), gpu=device.type == "cuda")

    command = channel.receive()
    if command.get("cmd") != "judge":
        return 0
    try:
        produced = torch.load(exchange / OUTPUTS_FILE, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        return _error(channel, "runtime_error", f"the candidate's outputs could not be read: {exc!r}")
    report = _judge(expected, produced, compare_outputs)
    channel.send(event="verdict", **report)
    del produced, expected
    variants: dict[str, Any] = {"eager": model}
    return _serve_timing(channel, variants, draws_inputs[0], device)


def _serve_timing(channel: Channel, variants: dict[str, Any], inputs: list[Any], device: Any) -> int:
    """Answer `time` commands until `exit`: fresh input copies per trial, L2 flushed, device events."""
    import torch

    from sandbox.runtime.timing import L2Flusher, time_trials

    flush: L2Flusher | None = None
    on_device = [_to_device(x, device) for x in inputs]
    while True:
        command = channel.receive()
        if command.get("cmd") != "time" or device.type != "cuda":
            return 0
        variant = str(command.get("variant"))
        if variant == "compile" and "compile" not in variants:
            try:
                variants["compile"] = torch.compile(variants["eager"])
            except Exception as exc:  # noqa: BLE001 - a baseline that cannot be built is reported, not fatal
                channel.send(
                    event="error", outcome="infrastructure", message=f"torch.compile failed: {exc!r}"
                )
                continue
        fn = variants.get(variant)
        if fn is None:
            channel.send(
                event="error", outcome="infrastructure", message=f"unknown timing variant {variant!r}"
            )
            continue
        flush = flush or L2Flusher(device)
        try:
            times = time_trials(
                fn,
                lambda: _clone(on_device),
                trials=int(command["trials"]),
                warmup=int(command.get("warmup", 0)),
                device=device,
                flush=flush,
            )
        except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
            channel.send(
                event="error",
                outcome=_classify(exc),
                message=f"timing {variant} failed: {exc!r}",
                traceback="".join(traceback.format_exception(exc)),
            )
            continue
        channel.send(event="times", variant=variant, ms=times)


def _judge(expected: list[list[Any]], produced: Any, compare: Any) -> dict[str, Any]:
    """Classify the candidate's outputs for every draw, its determinism re-run and its side effects."""
    if not isinstance(produced, dict) or not isinstance(produced.get("outputs"), list):
        return {
            "outcome": "runtime_error",
            "message": "the candidate worker wrote malformed outputs",
            "draws": [],
        }
    outputs = produced["outputs"]
    if len(outputs) != len(expected):
        return {
            "outcome": "runtime_error",
            "message": f"{len(outputs)} outputs for {len(expected)} draws",
            "draws": [],
        }
    draws: list[dict[str, Any]] = []
    failure: tuple[str, str] | None = None
    for index, (ref, out) in enumerate(zip(expected, outputs, strict=True)):
        result = compare(ref, out)
        draws.append(
            {
                "draw": index,
                "passed": result.passed,
                "max_abs_error": result.max_abs_error,
                "mean_abs_error": result.mean_abs_error,
                "max_rel_error": result.max_rel_error,
                "rel_l2_error": result.rel_l2_error,
            }
        )
        if not result.passed and failure is None:
            failure = (str(result.kind), f"draw {index}: {result.message}")
    if failure is None and produced.get("rerun") is not None:
        again = compare(expected[0], produced["rerun"])
        if not again.passed:
            failure = (
                "mismatch",
                f"not deterministic: a second run on draw 0 gave other results ({again.message})",
            )
    if failure is None and produced.get("mutated_inputs"):
        failure = ("mismatch", f"the candidate modified its inputs in draw(s) {produced['mutated_inputs']}")
    if failure is None and produced.get("aliased_outputs"):
        failure = (
            "hack_suspected",
            f"outputs share memory with inputs or each other in draw(s) {produced['aliased_outputs']}",
        )
    if failure is None:
        return {
            "outcome": "correct",
            "message": f"matches the reference on {len(expected)} fresh draws",
            "draws": draws,
        }
    return {"outcome": failure[0], "message": failure[1], "draws": draws}


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
    from sandbox.runtime.guards import RuntimeGuard
    from sandbox.runtime.loader import import_file

    job = channel.receive()
    exchange = Path(job["exchange"])
    bundle = torch.load(exchange / INPUTS_FILE, weights_only=True)
    device = _pick_device(job.get("device", "auto"))
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
        shared = {k: v for k, v in bundle["state_dict"].items() if k in own and own[k].shape == v.shape}
        if shared:
            model.load_state_dict(shared, strict=False)
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        return _error(channel, _classify(exc), f"building ModelNew failed: {exc!r}", exc)
    outputs: list[Any] = []
    mutated: list[int] = []
    aliased: list[int] = []
    rerun = None
    try:
        with torch.no_grad():
            for index, draw in enumerate(bundle["draws"]):
                pristine = [_to_device(x, device) for x in draw]
                given = _clone(pristine)
                result = guard.call(model, given, target)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                flat = flatten_outputs(result)
                if flat is not None and _aliases(flat, given):
                    aliased.append(index)
                if any(
                    isinstance(a, torch.Tensor) and not torch.equal(a, b)
                    for a, b in zip(given, pristine, strict=True)
                ):
                    mutated.append(index)
                outputs.append([t.detach().to("cpu").clone() for t in flat] if flat is not None else result)
            again = _clone([_to_device(x, device) for x in bundle["draws"][0]])
            rerun_out = flatten_outputs(guard.call(model, again, target))
            rerun = [t.detach().to("cpu").clone() for t in rerun_out] if rerun_out is not None else None
    except Exception as exc:  # noqa: BLE001 - untrusted code raises anything; it becomes a verdict
        if guard.finding() is not None:  # e.g. a meta/lazy output that broke reading it back
            return _error(channel, "hack_suspected", f"{guard.finding()} (then: {exc!r})", exc)
        return _error(channel, _classify(exc), f"ModelNew.forward failed: {exc!r}", exc)
    suspicion = guard.finding()  # kernel never ran, patched timers, live threads, lazy/fake outputs
    if suspicion is not None:
        return _error(channel, "hack_suspected", suspicion)
    torch.save(
        {"outputs": outputs, "rerun": rerun, "mutated_inputs": mutated, "aliased_outputs": aliased},
        exchange / OUTPUTS_FILE,
    )
    channel.send(event="done", device=_device_name(device))
    return _serve_timing(channel, {"candidate": model}, bundle["draws"][0], device)


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
