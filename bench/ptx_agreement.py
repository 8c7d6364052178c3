"""Agreement and speed of the PTX checker against ptxas, on a generated corpus.

The corpus: the nvcc-generated fixture modules (valid) and deterministic mutants of them (mostly
invalid: misspelled mnemonic, unknown modifier, undeclared register, dropped operand, lowered
.version), plus single-instruction modules over several targets. Each module is judged by ptxas
(check-only, `-arch=compute_NN`) and by the checker; we report false alarms (valid modules the
checker rejects), caught invalid modules (an error on one of ptxas's error lines), and the time
per module of both.

    python bench/ptx_agreement.py [--mutants 40] [--show 10]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from knowledge.ptx import check_ptx, load_tables

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "knowledge" / "ptx" / "fixtures"
# Lines of the module itself (ptxas also reports lines of its internal "<macro util>" file).
_LINE = re.compile(r"^ptxas (?!<)[^\n]*?, line (\d+); (?:error|fatal)", re.M)
_INSTR = re.compile(r"^(\s*(?:@!?%\w+\s+)?)([a-z][\w.:]*)(\s+[^;]*)?;", re.M)


@dataclass
class Case:
    name: str
    source: str
    target: str


def _target(source: str) -> str:
    match = re.search(r"^\s*\.target\s+(sm_\w+)", source, re.M)
    return match.group(1) if match else "sm_80"


def _mutants(name: str, source: str, count: int, rng: random.Random) -> list[Case]:
    instructions = [m for m in _INSTR.finditer(source) if m.group(2) not in ("ret", "exit")]
    found: list[Case] = []
    for index in range(count):
        kind = 4 if index == 0 else index % 4
        if kind == 4:
            found.append(
                Case(
                    f"{name}~version", re.sub(r"\.version \d+\.\d+", ".version 6.0", source), _target(source)
                )
            )
            continue
        match = rng.choice(instructions)
        prefix, opcode, rest = match.group(1), match.group(2), match.group(3) or ""
        if kind == 0:
            opcode = opcode.replace(".", "x.", 1) if "." in opcode else opcode + "x"
        elif kind == 1:
            opcode += ".zz"
        elif kind == 2 and "%r" in rest:
            rest = re.sub(r"%r\d+", "%r9999", rest, count=1)
        elif kind == 3 and "," in rest and "{" not in rest:
            rest = rest.rsplit(",", 1)[0]
        else:
            opcode += ".zz"
        mutated = source[: match.start()] + f"{prefix}{opcode}{rest};" + source[match.end() :]
        found.append(Case(f"{name}~{kind}@{match.start()}", mutated, _target(source)))
    return found


_SNIPPET_HEADER = """.version {version}
.target {target}
.address_size 64
.visible .entry k(.param .u64 p0)
{{
.reg .pred %p<4>; .reg .b16 %rs<8>; .reg .b32 %r<16>; .reg .f32 %f<16>; .reg .b64 %rd<8>;
{body}
ret;
}}
"""
_SNIPPETS = [
    "add.bf16x2 %r1, %r2, %r3;",
    "cp.async.ca.shared.global [%r1], [%rd1], 16;",
    "redux.sync.add.u32 %r1, %r2, -1;",
    "fence.proxy.async;",
    "wgmma.fence.sync.aligned;",
    "mov.u32 %r1, %cluster_ctarank;",
    "ld.global.L2::cache_hint.f32 %f1, [%rd1], %rd2;",
    "tcgen05.fence::before_thread_sync;",
    "max.relu.s32 %r1, %r2, %r3;",
    "setmaxnreg.inc.sync.aligned.u32 240;",
]
_SNIPPET_TARGETS = [
    ("sm_75", "7.8"),
    ("sm_80", "7.0"),
    ("sm_89", "7.8"),
    ("sm_90", "8.0"),
    ("sm_90a", "8.0"),
    ("sm_100a", "8.6"),
    ("sm_120a", "8.7"),
]


def corpus(mutants_per_file: int, seed: int = 7) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    for path in sorted(FIXTURES.glob("*.ptx")):
        source = path.read_text()
        cases.append(Case(path.name, source, _target(source)))
        cases.extend(_mutants(path.name, source, mutants_per_file, rng))
    for target, version in _SNIPPET_TARGETS:
        for i, body in enumerate(_SNIPPETS):
            cases.append(
                Case(
                    f"snippet{i}@{target}",
                    _SNIPPET_HEADER.format(target=target, version=version, body=body),
                    target,
                )
            )
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mutants", type=int, default=40, help="mutants per fixture module")
    parser.add_argument("--show", type=int, default=10, help="disagreements to print")
    args = parser.parse_args()
    ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
    if not Path(ptxas).exists():
        print("ptxas not found", file=sys.stderr)
        return 2
    cases = corpus(args.mutants)
    load_tables()
    ptxas_s = check_s = small_ptxas_s = small_check_s = 0.0
    small = 0
    valid = invalid = false_alarms = caught = 0
    shown: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.ptx"
        for case in cases:
            path.write_text(case.source)
            before_ptxas, before_check = ptxas_s, check_s
            start = time.perf_counter()
            done = subprocess.run(
                [ptxas, f"-arch={case.target.replace('sm_', 'compute_')}", str(path), "-o", "/dev/null"],
                capture_output=True,
                text=True,
                check=False,
            )
            ptxas_s += time.perf_counter() - start
            start = time.perf_counter()
            ours = {d.line for d in check_ptx(case.source) if d.is_error}
            check_s += time.perf_counter() - start
            if case.source.count("\n") <= 60:
                small += 1
                small_ptxas_s += ptxas_s - before_ptxas
                small_check_s += check_s - before_check
            lines = {int(x) for x in _LINE.findall(done.stdout + done.stderr)}
            if done.returncode == 0:
                valid += 1
                if ours:
                    false_alarms += 1
                    shown.append(f"FALSE ALARM {case.name}: lines {sorted(ours)}")
            else:
                invalid += 1
                if ours & lines or (ours and not lines):
                    caught += 1
                else:
                    shown.append(f"MISSED {case.name}: ptxas {sorted(lines)} ours {sorted(ours)}")
    for line in shown[: args.show]:
        print(line)
    n = len(cases)
    print(f"modules: {n} (ptxas-valid {valid}, ptxas-invalid {invalid})")
    print(
        f"false alarms: {false_alarms}/{valid}; invalid caught on ptxas's line: {caught}/{invalid} "
        f"({100.0 * caught / max(invalid, 1):.1f}%)"
    )
    print(
        f"time per module: ptxas {1e3 * ptxas_s / n:.2f} ms, checker {1e3 * check_s / n:.3f} ms "
        f"(x{ptxas_s / max(check_s, 1e-9):.0f})"
    )
    if small:
        print(
            f"modules of <= 60 lines ({small}): ptxas {1e3 * small_ptxas_s / small:.2f} ms, "
            f"checker {1e3 * small_check_s / small:.3f} ms (x{small_ptxas_s / max(small_check_s, 1e-9):.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
