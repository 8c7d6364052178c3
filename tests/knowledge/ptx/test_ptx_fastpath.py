"""The checker's fast paths must say exactly what the full per-instruction check says.

Long functions (24 instructions or more) resolve register ranges in bulk and judge operands once per
(opcode, digit-free shape); short ones check instruction by instruction; the parser takes common
instructions and declarations in one match. Each test pins a case where a shortcut could hide or
misplace a diagnostic.
"""

from __future__ import annotations

import pytest

from knowledge.ptx import Codes, check_ptx
from knowledge.ptx.parser import Directive, Instruction, Label, parse_module

HEADER = """.version 8.0
.target sm_90
.address_size 64
.visible .entry k(.param .u64 p0)
{{
.reg .pred %p<4>; .reg .b16 %rs<8>; .reg .b32 %r<16>; .reg .f32 %f<16>; .reg .b64 %rd<8>;
{decls}
{body}
ret;
}}
"""
PADDING = "add.s32 %r1, %r2, %r3;\nadd.f32 %f1, %f2, %f3;\nld.global.f32 %f4, [%rd1];\n" * 12


def _diagnostics(body: str, decls: str = "") -> list[tuple[str, str, int | None]]:
    return [(d.code, d.message, d.line) for d in check_ptx(HEADER.format(decls=decls, body=body))]


def _errors_at(body: str, decls: str = "") -> list[tuple[str, int | None]]:
    return [(code, line) for code, _, line in _diagnostics(body, decls) if code != Codes.UNKNOWN_FORM]


BODIES = [
    "add.s32 %r1, %r2, %f3;",
    "add.f32 %f1, %f2, %r99;",
    "add.f32 %f1, %f2;",
    "ld.global.f32 %f1, %rd1;",
    "ld.global.v4.f32 {%f1,%f2,%f3}, [%rd1];",
    "@%r1 bra $L1;\n$L1:",
    "@%p9 bra $L2;\n$L2:",
    "add.zz.f32 %f1, %f2, %f3;",
    "mov.u32 %r1, %tidd.x;",
    "add.s32 %r1, %rs2, %r3;",
]


@pytest.mark.parametrize("body", BODIES)
def test_long_function_reports_what_a_short_one_does(body: str) -> None:
    """The same faulty instruction, alone or after 36 valid ones with the same shapes."""
    short = [(code, message) for code, message, _ in _diagnostics(body)]
    long = [(code, message) for code, message, _ in _diagnostics(PADDING + body)]
    assert long == short
    assert short, f"expected a diagnostic for {body!r}"


def test_shape_memo_keeps_each_bad_register_type() -> None:
    """`%a1` and `%a2` share the digit-free shape `%a0` but not a type: the memo must stand down."""
    decls = ".reg .u32 %a1; .reg .f32 %a2;"
    body = "add.f32 %f1, %f2, %a2;\n" * 30 + "add.f32 %f1, %f2, %a1;"
    errors = _errors_at(body, decls)
    assert errors == [(Codes.BAD_OPERAND, 38)]


def test_register_past_its_range_after_many_valid_uses() -> None:
    body = "add.s32 %r1, %r2, %r3;\n" * 30 + "add.s32 %r1, %r2, %r16;"
    assert _errors_at(body) == [(Codes.UNDECLARED_REGISTER, 38)]


def test_every_repeated_fault_is_reported() -> None:
    """The memo replays a failing verdict to the full check, which reports each instruction."""
    body = PADDING + "add.s32 %r1, %r2, %f3;\n" * 3
    lines = [line for code, line in _errors_at(body) if code == Codes.BAD_OPERAND]
    assert lines == [44, 45, 46]


def test_parser_fast_path_positions() -> None:
    source = ".version 8.0\n.target sm_90\n{\n  @!%p1  bra.uni $L1;\nloop: add.f32 %f1, %f2, %f3;\n$x$1:\n"
    source += "ld.global.v2.f32 {%f1, %f2}, [%rd1];\nmov.u32 %r1, %r2 }\n"
    module = parse_module(source)
    kinds = [type(s).__name__ for s in module.stray]
    assert kinds == ["Instruction", "Label", "Instruction", "Label", "Instruction", "Instruction"]
    guarded = module.stray[0]
    assert isinstance(guarded, Instruction)
    assert (guarded.guard, guarded.opcode, guarded.rest.strip()) == ("!%p1", "bra.uni", "$L1")
    assert module.line_col(guarded.pos) == (4, 3)
    assert module.line_col(guarded.opcode_pos) == (4, 10)
    label = module.stray[1]
    assert isinstance(label, Label) and label.name == "loop"
    vector = module.stray[4]
    assert isinstance(vector, Instruction)
    assert [o.text for o in vector.operands] == ["{%f1, %f2}", "[%rd1]"]
    assert module.line_col(vector.operands[1].pos) == (7, 30)
    unterminated = module.stray[5]
    assert isinstance(unterminated, Instruction)
    assert unterminated.rest.strip() == "%r1, %r2"


def test_parser_fast_directives_keep_line_directives_apart() -> None:
    module = parse_module(".version 8.0\n.target sm_90\n.address_size 64\n.global .b32 g[4];\n")
    assert [(d.name, d.text) for d in module.header if isinstance(d, Directive)] == [
        (".version", "8.0"),
        (".target", "sm_90"),
        (".address_size", "64"),
        (".global", ".b32 g[4]"),
    ]
