"""ptxas stays the judge: the checker must agree with it on small valid and invalid modules.

Agreement means: a module ptxas accepts gets no checker error (no false alarm), and a module ptxas
rejects gets a checker error on a line where ptxas reported one. Skipped where ptxas is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from knowledge.ptx import check_ptx

PTXAS = shutil.which("ptxas") or (
    "/usr/local/cuda/bin/ptxas" if Path("/usr/local/cuda/bin/ptxas").exists() else None
)
pytestmark = [pytest.mark.skipif(PTXAS is None, reason="ptxas is not installed"), pytest.mark.slow]

HEADER = """.version {version}
.target {target}
.address_size 64
.visible .entry k(.param .u64 p0)
{{
.reg .pred %p<4>; .reg .b16 %rs<8>; .reg .b32 %r<16>; .reg .f32 %f<16>; .reg .b64 %rd<8>; .reg .f64 %fd<4>;
.shared .align 16 .b8 sm[1024];
{body}
ret;
}}
"""

BODIES = [
    "add.f32 %f1, %f2, %f3;",
    "add.f32.rn %f1, %f2, %f3;",
    "add.zz.f32 %f1, %f2, %f3;",
    "addd.f32 %f1, %f2, %f3;",
    "add.b32 %r1, %r2, %r3;",
    "add.rn.rz.f32 %f1, %f2, %f3;",
    "add.nc.f32 %f1, %f2, %f3;",
    "add.f32 %f1, %f2;",
    "add.f32 %f1, %f2, %f99;",
    "add.s32 %r1, %r2, %f3;",
    "add.bf16x2 %r1, %r2, %r3;",
    "fma.rn.bf16x2 %r1, %r2, %r3, %r4;",
    "ld.global.nc.v4.f32 {%f1,%f2,%f3,%f4}, [%rd1];",
    "ld.global.v4.f32 {%f1,%f2,%f3}, [%rd1];",
    "ld.nc.global.f32 %f1, [%rd1];",
    "ld.local.nc.f32 %f1, [%rd1];",
    "ld.const.global.f32 %f1, [%rd1];",
    "ld.sharedd.f32 %f1, [%rd1];",
    "ld.global.f16 %rs1, [%rd1];",
    "ld.global.u8 %r1, [%rd1];",
    "ld.global.u64 %r1, [%rd1];",
    "ld.global.f32 %f1, %rd1;",
    "ld.param.u64 %rd1, [p1];",
    "st.global.f32 %f1, [%rd1];",
    "st.global.u32 [%rd1], %rd2;",
    "cvta.to.global.u64 %rd1, [%rd2];",
    "mov.u32 %r1, %tidd.x;",
    "mov.u32 %r1, %cluster_ctarank;",
    "mov.u64 %rd1, smm;",
    "mov.u32 %r1, %rd1;",
    "mul.wide.s32 %rd1, %r2, %r3;",
    "mad.f32 %f1, %f2, %f3, %f4;",
    "div.f32 %f1, %f2, %f3;",
    "max.relu.s32 %r1, %r2, %r3;",
    "cvt.rn.bf16.f32 %rs1, %f1;",
    "cvt.u32.u64 %r1, %rd1;",
    "setp.lt.f32 %r1, %f1, %f2;",
    "setp.ltt.f32 %p1, %f1, %f2;",
    "selp.b32 %r1, %r2, %r3, %r4;",
    "@%r1 bra $L1;\n$L1:",
    "@%p1 bra $L2;",
    "bar.sync;",
    "bar.syncc 0;",
    "fence.proxy.async;",
    "fence.acq_rel.cluster;",
    "shfl.sync.bfly.b32 %r1, %r2, 1, 31;",
    "shfl.bfly.sync.b32 %r1|%p1, %r2, 1, 31, -1;",
    "redux.sync.add.u32 %r1, %r2, -1;",
    "atom.global.add.noftz.bf16x2 %r1, [%rd1], %r2;",
    "atom.global.addd.u32 %r1, [%rd1], 1;",
    "cp.async.ca.shared.global [%r1], [%rd1], 16;",
    "ldmatrix.sync.aligned.m8n8.x4.shared.b32 {%r1,%r2,%r3,%r4}, [%r5];",
    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"
    " {%f1,%f2,%f3,%f4}, {%r1,%r2,%r3,%r4}, {%r5,%r6}, {%f5,%f6,%f7,%f8};",
    "wgmma.fence.sync.aligned;",
    "setmaxnreg.inc.sync.aligned.u32 240;",
    "tcgen05.fence::before_thread_sync;",
    "elect.sync %r1|%p1, -1;",
    "ld.global.L2::cache_hint.f32 %f1, [%rd1], %rd2;",
]
TARGETS = [
    ("sm_75", "6.5"),
    ("sm_80", "7.0"),
    ("sm_90", "7.8"),
    ("sm_90a", "8.0"),
    ("sm_100a", "8.6"),
    ("sm_120a", "8.7"),
]
_LINE = re.compile(r"^ptxas (?!<)[^\n]*?, line (\d+); (?:error|fatal)", re.M)


def _ptxas(source: str, target: str, folder: Path) -> tuple[bool, set[int]]:
    path = folder / "case.ptx"
    path.write_text(source)
    assert PTXAS is not None
    done = subprocess.run(
        [PTXAS, f"-arch={target.replace('sm_', 'compute_')}", str(path), "-o", "/dev/null"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0, {int(m) for m in _LINE.findall(done.stdout + done.stderr)}


@pytest.mark.parametrize(("target", "version"), TARGETS)
def test_agreement_with_ptxas(target: str, version: str, tmp_path: Path) -> None:
    false_alarms: list[str] = []
    missed: list[str] = []
    for body in BODIES:
        source = HEADER.format(target=target, version=version, body=body)
        valid, lines = _ptxas(source, target, tmp_path)
        ours = {d.line for d in check_ptx(source) if d.is_error}
        if valid and ours:
            false_alarms.append(body)
        elif not valid and not (ours & lines or (ours and not lines)):
            missed.append(f"{body} (ptxas lines {sorted(lines)}, ours {sorted(x for x in ours if x)})")
    assert false_alarms == []
    assert missed == []
