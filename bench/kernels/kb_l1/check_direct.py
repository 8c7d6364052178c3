"""Direct GPU check of the kb_l1 candidates against their KernelBench references, outside the verifier.

The verifier (sandbox/verify.py) is what `bench/verify_speed.py` times; this script only answers "is
each kernel right on the problem's exact shapes?" quickly and in one process, so that a wrong kernel is
found before a long bench run. Inputs are drawn on the GPU (one draw per problem, a fixed seed) and
compared with the verifier's tolerance: |a - b| <= 1e-2 + 1e-2 |b| elementwise and a relative L2 error
of at most 2e-3 (integer outputs: exact).

    PYTHONPATH=. python3 bench/kernels/kb_l1/check_direct.py [--kinds cuda,ptx] [--only 19,23] [--dataset P]

Standard library, torch and `sandbox.runtime` only (no kernelwright settings or pydantic needed).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
DATASETS = (
    ROOT / "shared" / "kernelbench" / "kernelbench.jsonl",
    ROOT.parent / "shared" / "kernelbench" / "kernelbench.jsonl",
)
_CHUNK = 1 << 26
_FILE = re.compile(r"^(?P<id>\d+)_(?P<stem>\w+?)_(?P<kind>ptx|cuda|inline)\.py$")


def _module(name: str, source: str, path: str) -> types.ModuleType:
    """Import `source` as a fresh module called `name` (the reference or a candidate)."""
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def _flat(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _flat(v)]
    return []


def _compare(got: list[torch.Tensor], want: list[torch.Tensor]) -> str | None:
    """None when `got` matches `want` within the verifier's tolerance, else what is wrong."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"output {index}: {tuple(g.shape)} {g.dtype}, expected {tuple(w.shape)} {w.dtype}"
        if not w.is_floating_point():
            if not torch.equal(g, w):
                return f"output {index}: {(g != w).sum().item()} integer elements differ"
            continue
        bad, err2, ref2, worst = 0, 0.0, 0.0, 0.0
        gf, wf = g.reshape(-1), w.reshape(-1)
        for start in range(0, wf.numel(), _CHUNK):  # chunks: a double copy of 1.6e9 floats won't fit
            gc, wc = gf[start : start + _CHUNK].double(), wf[start : start + _CHUNK].double()
            diff = (gc - wc).abs()
            bad += int((diff > 1e-2 + 1e-2 * wc.abs()).sum().item())
            worst = max(worst, float(diff.max().item()))
            err2 += float((diff * diff).sum().item())
            ref2 += float((wc * wc).sum().item())
        rel = (err2 / max(ref2, 1e-300)) ** 0.5
        if bad or not rel <= 2e-3:  # `not <=`: a NaN error fails too
            return f"output {index}: {bad} elements out of tolerance, max |err| {worst:.3g}, rel L2 {rel:.3g}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="cuda,ptx", help="comma-separated: cuda, ptx, inline")
    parser.add_argument("--only", help="comma-separated problem ids")
    parser.add_argument("--dataset", type=Path)
    args = parser.parse_args()
    dataset = args.dataset or next((p for p in DATASETS if p.is_file()), None)
    if dataset is None:
        raise SystemExit("KernelBench dataset not found; pass --dataset")
    refs = {}
    for line in dataset.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["level"] == 1:
            refs[int(item["problem_id"])] = item["code"]
    kinds = set(args.kinds.split(","))
    only = {int(x) for x in args.only.split(",")} if args.only else None
    files = sorted(
        (int(m["id"]), m["kind"], p)
        for p in HERE.glob("*.py")
        if (m := _FILE.match(p.name)) is not None
        and m["kind"] in kinds
        and (only is None or int(m["id"]) in only)
    )
    failures = 0
    device = torch.device("cuda")
    for pid, kind, path in files:
        started = time.perf_counter()
        try:
            torch.cuda.empty_cache()
            ref = _module(f"ref_{pid}", refs[pid], f"L1/{pid}")
            torch.manual_seed(pid)
            init = list(ref.get_init_inputs())
            with device:
                inputs = list(ref.get_inputs())
            model = ref.Model(*init).to(device).eval()
            with torch.no_grad():
                want = [t.detach() for t in _flat(model(*inputs))]
            cand = _module(f"cand_{pid}_{kind}", path.read_text(encoding="utf-8"), str(path))
            new = cand.ModelNew(*init).to(device).eval()
            with torch.no_grad():
                got = [
                    t.detach()
                    for t in _flat(new(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]))
                ]
            torch.cuda.synchronize()
            problem = _compare(got, want)
            # a second call must give the same (kernels may not keep state between calls)
            with torch.no_grad():
                again = _flat(new(*inputs))
            torch.cuda.synchronize()
            problem = problem or _compare(again, want)
            del got, want, again, inputs, model, new
        except Exception as exc:  # noqa: BLE001 - report every candidate, never stop at one
            problem = f"{exc!r}\n{traceback.format_exc()[-1500:]}"
        elapsed = time.perf_counter() - started
        failures += problem is not None
        print(
            f"L1/{pid:<4} {kind:6} {'OK' if problem is None else 'FAIL'} {elapsed:6.2f}s {problem or ''}",
            flush=True,
        )
    print(f"{len(files) - failures}/{len(files)} correct", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
