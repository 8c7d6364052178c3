"""The PTX checker: acceptance cases (each error on the right line with a useful hint) and no false alarms."""

from __future__ import annotations

import pytest

from kernelwright.domain import Diagnostic
from knowledge.ptx import CHECK_SOURCE, check_ptx

BODY_LINE = 9  # the line of `{body}` in the module below


def module(body: str, *, target: str = "sm_80", version: str = "7.0") -> str:
    return (
        f".version {version}\n"
        f".target {target}\n"
        ".address_size 64\n"
        ".visible .entry k(.param .u64 p0)\n"
        "{\n"
        ".reg .pred %p<4>; .reg .b16 %rs<8>; .reg .b32 %r<16>; .reg .f32 %f<16>;\n"
        ".reg .b64 %rd<8>; .reg .f64 %fd<4>;\n"
        ".shared .align 16 .b8 sm[1024];\n"
        f"{body}\n"
        "ret;\n"
        "}\n"
    )


def errors(source: str, target: str | None = None) -> list[Diagnostic]:
    return [d for d in check_ptx(source, target=target) if d.is_error]


def only_error(body: str, **kwargs: str) -> Diagnostic:
    found = errors(module(body, **kwargs))
    assert found, f"expected an error for {body!r}"
    assert all(d.line == BODY_LINE for d in found), [d.render() for d in found]
    return found[0]


def test_valid_module_has_no_diagnostics() -> None:
    body = "ld.param.u64 %rd1, [p0];\ncvta.to.global.u64 %rd2, %rd1;\nld.global.nc.f32 %f1, [%rd2];"
    assert check_ptx(module(body)) == []


@pytest.mark.parametrize(
    ("body", "code", "in_hint"),
    [
        ("addd.f32 %f1, %f2, %f3;", "ptx.unknown_instruction", "add"),
        ("ldg.f32 %f1, [%rd1];", "ptx.unknown_instruction", "ld.global.nc"),
        ("add.zz.f32 %f1, %f2, %f3;", "ptx.bad_modifier", "rnd"),
        ("add.nc.f32 %f1, %f2, %f3;", "ptx.bad_modifier", None),
        ("add.rn.rz.f32 %f1, %f2, %f3;", "ptx.bad_modifier", ".rn .rz"),
        ("add.b32 %r1, %r2, %r3;", "ptx.bad_type", ".u32"),
        ("add %r1, %r2, %r3;", "ptx.bad_type", ".s32"),
        ("add.f32 %f1, %f2, %f99;", "ptx.undeclared_register", "%f<16>"),
        ("add.f32 %f1, %q3, %f2;", "ptx.undeclared_register", None),
        ("add.f32 %f1, %f2;", "ptx.operand_count", "d, a, b"),
        ("add.f32 %f1, %f2, %f3, %f4;", "ptx.operand_count", None),
        ("ld.const.global.f32 %f1, [%rd1];", "ptx.bad_state_space", None),
        ("ld.sharedd.f32 %f1, [%rd1];", "ptx.bad_state_space", ".shared"),
        ("st.const.f32 [%rd1], %f1;", "ptx.bad_state_space", ".global"),
        ("ld.local.nc.f32 %f1, [%rd1];", "ptx.bad_state_space", ".global"),
        ("ld.global.f32 %f1, %rd1;", "ptx.bad_operand", "[%rd1]"),
        ("ld.global.v4.f32 {%f1,%f2,%f3}, [%rd1];", "ptx.bad_operand", None),
        ("add.s32 %r1, %r2, %f3;", "ptx.bad_operand", None),
        ("@%r1 bra $L1;\n$L1:", "ptx.bad_operand", ".pred"),
        ("bra $nowhere;", "ptx.undeclared_symbol", None),
        ("mov.u64 %rd1, smm;", "ptx.undeclared_symbol", "sm"),
        ("add.bf16x2 %r1, %r2, %r3;", "ptx.needs_target", "sm_90"),
        ("fma.rn.bf16x2 %r1, %r2, %r3, %r4;", "ptx.needs_target", "sm_80"),
        ("mad.f32 %f1, %f2, %f3, %f4;", "ptx.bad_modifier", ".rn"),
        ("div.f32 %f1, %f2, %f3;", "ptx.bad_modifier", ".approx"),
        ("setp.lt.f32 %r1, %f1, %f2;", "ptx.bad_operand", ".pred"),
    ],
)
def test_acceptance_errors(body: str, code: str, in_hint: str | None) -> None:
    target = "sm_75" if "fma.rn.bf16x2" in body else "sm_80"
    found = errors(module(body, target=target, version="7.8" if target == "sm_75" else "7.0"))
    assert found, body
    assert code in {d.code for d in found}, [d.render() for d in found]
    diagnostic = next(d for d in found if d.code == code)
    assert diagnostic.line == BODY_LINE
    assert diagnostic.column is not None
    assert diagnostic.source == CHECK_SOURCE
    assert diagnostic.message
    if in_hint is not None:
        assert diagnostic.hint is not None and in_hint in diagnostic.hint, diagnostic.render()


def test_messages_name_target_and_legal_alternatives() -> None:
    diagnostic = only_error("add.bf16x2 %r1, %r2, %r3;", target="sm_80", version="7.0")
    assert "sm_90" in diagnostic.message and "sm_80" in diagnostic.message
    bad_type = only_error("add.b32 %r1, %r2, %r3;")
    assert bad_type.hint is not None and "legal types here" in bad_type.hint
    assert ".bf16x2" not in bad_type.hint  # not legal on sm_80


def test_did_you_mean_modifier_and_instruction() -> None:
    typo = only_error("ld.gobal.f32 %f1, [%rd1];")
    assert typo.hint is not None and "`.global`" in typo.hint
    unknown = only_error("shfll.sync.bfly.b32 %r1, %r2, 1, 31, -1;")
    assert unknown.code == "ptx.unknown_instruction"
    assert unknown.hint is not None and "shfl" in unknown.hint


@pytest.mark.parametrize(
    ("body", "target", "min_version", "low_version"),
    [
        ("add.bf16x2 %r1, %r2, %r3;", "sm_90", "7.8", None),
        ("cp.async.ca.shared.global [%r1], [%rd1], 16;", "sm_80", "7.0", None),
        ("redux.sync.add.u32 %r1, %r2, -1;", "sm_80", "7.0", None),
        ("fence.proxy.async;", "sm_90", "8.0", "7.8"),
        ("ld.global.L2::cache_hint.f32 %f1, [%rd1], %rd2;", "sm_80", "7.4", "7.3"),
        (".reg .b128 %q1; ld.global.b128 %q1, [%rd1];", "sm_80", "8.3", "8.2"),
        ("wgmma.fence.sync.aligned;", "sm_90a", "8.0", None),
        ("max.relu.s32 %r1, %r2, %r3;", "sm_90", "8.0", "7.8"),
        ("mov.u32 %r1, %cluster_ctarank;", "sm_90", "7.8", None),
    ],
)
def test_gating_accepts_at_minimum_and_rejects_below(
    body: str, target: str, min_version: str, low_version: str | None
) -> None:
    assert errors(module(body, target=target, version=min_version)) == []
    if "b128" not in body:  # .b128 loads need sm_70 only: every target here has them
        older = {"sm_80": "sm_75", "sm_90": "sm_89", "sm_90a": "sm_90"}[target]
        below = errors(module(body, target=older, version=min_version))
        assert "ptx.needs_target" in {d.code for d in below}, [d.render() for d in below]
    if low_version is not None:
        too_old = errors(module(body, target=target, version=low_version))
        assert "ptx.needs_version" in {d.code for d in too_old}, [d.render() for d in too_old]
        assert all(d.line == BODY_LINE for d in too_old if d.code == "ptx.needs_version")


def test_target_override() -> None:
    source = module("add.bf16x2 %r1, %r2, %r3;", target="sm_90", version="7.8")
    assert errors(source) == []
    assert "ptx.needs_target" in {d.code for d in errors(source, target="sm_80")}


def test_modifiers_are_unordered() -> None:
    for body in (
        "add.f32.rn %f1, %f2, %f3;",
        "add.ftz.rn.f32 %f1, %f2, %f3;",
        "ld.nc.global.f32 %f1, [%rd1];",
        "shfl.bfly.sync.b32 %r1|%p1, %r2, 1, 31, -1;",
        "ldmatrix.sync.aligned.x4.m8n8.shared.b16 {%r1,%r2,%r3,%r4}, [%r5];",
    ):
        assert errors(module(body)) == [], body


def test_ptxas_looseness_is_not_flagged() -> None:
    for body in (
        "ld.global.u8 %r1, [%rd1];",  # wider destination register
        "st.global.u32 [%rd1], %rd2;",  # wider source register
        "cvt.u64.u32 %rd1, %rd2;",
        "mov.b32 %f1, %r1;",
        "setp.lt.f32 %p1, %r1, %f1;",
        "ld.global.ca.nc.f32 %f1, [%rd1];",
        "mov.u32 %r1, %tid.w;",
    ):
        assert errors(module(body)) == [], body


def test_unknown_forms_of_known_mnemonics_are_not_errors() -> None:
    found = check_ptx(module("vadd.u32.u32.u32 %r1, %r2, %r3;"))
    assert not any(d.is_error for d in found)


def test_header_directives() -> None:
    low = errors(module("ret;", target="sm_80", version="6.5"))
    assert [d.line for d in low] == [2] and "does not support .target sm_80" in low[0].message
    too_new = errors(module("ret;", version="9.9"))
    assert too_new and too_new[0].line == 1 and too_new[0].code == "ptx.directive"
    bad_target = errors(module("ret;", target="sm_800"))
    assert bad_target and bad_target[0].line == 2
    assert errors(
        module("ret;", target="sm_90", version="7.8").replace(".address_size 64", ".address_size 32")
    )


def test_unknown_directive_and_register_type() -> None:
    found = errors(module(".sharedd .b8 buf[16];"))
    assert found[0].code == "ptx.directive" and found[0].hint is not None and ".shared" in found[0].hint
    bad_reg = errors(module(".reg .f17 %x;"))
    assert bad_reg[0].code == "ptx.bad_type"


def test_comments_and_positions() -> None:
    source = module("/* a\n comment */ add.zz.f32 %f1, %f2, %f3; // trailing")
    found = errors(source)
    assert found[0].line == BODY_LINE + 1
    assert found[0].column == 13
