"""The bulk path (long function bodies parsed and judged without per-statement objects) must give
exactly the diagnostics of the statement-by-statement path, on real modules and on their mutants.

The modules: the nvcc fixtures and, where present, the benchmark's whole cached nvcc corpus; each
is checked as written and after deterministic mistakes of the kinds the agreement benchmark makes
(misspelled opcode, unknown modifier, undeclared register, dropped operand, old `.version`), a few
that break the body's shape (a missing `;`, a stray brace, a line directive in a body), and some
that make the bulk path report on chosen rows of a long body (two faults in one function, an
unknown symbol, a guard that is not a predicate, a vector of the wrong size, a register of the
wrong type).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from knowledge.ptx import Codes, check_ptx
from knowledge.ptx.parser import _COMMENT, _blank, parse_module

HERE = Path(__file__).resolve().parent
NVCC_CORPUS = HERE.parents[2] / "bench" / "results" / "ptx_nvcc_corpus"
MODULES = sorted((HERE / "fixtures").glob("*.ptx")) + sorted(NVCC_CORPUS.glob("*.ptx"))
_REGISTER = re.compile(r"%(?:r|f|rd)\d+")
_INSTR = re.compile(r"^(\s*(?:@!?%\w+\s+)?)([a-z][\w.:]*)(\s+[^;]*)?;", re.M)


def _mutants(source: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    found = [source, re.sub(r"\.version \d+\.\d+", ".version 6.0", source)]
    instructions = [m for m in _INSTR.finditer(source) if m.group(2) not in ("ret", "exit")]
    for kind in range(13):
        match = rng.choice(instructions)
        prefix, opcode, rest = match.group(1), match.group(2), match.group(3) or ""
        statement = f"{prefix}{opcode}{rest};"
        if kind == 0:
            statement = f"{prefix}{opcode.replace('.', 'x.', 1)}{rest};"
        elif kind == 1:
            statement = f"{prefix}{opcode}.zz{rest};"
        elif kind == 2:
            statement = f"{prefix}{opcode}{_REGISTER.sub('%r9999', rest, count=1)};"
        elif kind == 3 and "," in rest:
            statement = f"{prefix}{opcode}{rest.rsplit(',', 1)[0]};"
        elif kind == 4:
            statement = f"{prefix}{opcode}{rest}"  # a missing `;`
        elif kind == 5:
            statement += "\n}"  # a stray brace closes the function early
        elif kind == 6:
            statement += "\n.loc 1 2 3"
        elif kind == 7:
            statement = f"{prefix}@%p1 {opcode}{rest};"  # a guard in the wrong place
        elif kind == 8:  # two faults, far apart, in one body
            other = rng.choice(instructions)
            first, second = sorted([match, other], key=lambda m: m.start())
            if first.start() == second.start():
                continue
            found.append(
                source[: first.start()]
                + f"{first.group(1)}{first.group(2)}.zz{first.group(3) or ''};"
                + source[first.end() : second.start()]
                + f"{second.group(1)}{second.group(2)}"
                + f"{_REGISTER.sub('%r9999', second.group(3) or '', count=1)};"
                + source[second.end() :]
            )
            continue
        elif kind == 9:
            statement = f"{prefix}bra.uni no_such_label;"  # an unknown symbol
        elif kind == 10:
            statement = f"{prefix}@%r1 {opcode}{rest};"  # a guard that is not a predicate
        elif kind == 11:
            statement = f"{prefix}ld.global.v4.f32 {{%f1, %f2}}, [%rd1];"  # a vector of the wrong size
        elif kind == 12:
            statement = f"{prefix}add.f32 %f1, %f2, %rd1;"  # a register of the wrong type
        found.append(source[: match.start()] + statement + source[match.end() :])
    return found


def _render(source: str, bulk: bool, target: str | None = None) -> list[tuple[object, ...]]:
    return [
        (d.code, d.message, d.severity, d.line, d.column, d.hint)
        for d in check_ptx(source, target=target, filename="m.ptx", bulk=bulk)
    ]


def test_the_bulk_path_is_taken_on_nvcc_output() -> None:
    module = parse_module((HERE / "fixtures" / "nvcc_k_sm100.ptx").read_text())
    assert module.functions and all(fn.rows is not None for fn in module.functions if len(fn.body) > 40)
    assert any(fn.rows is not None for fn in module.functions)
    reference = parse_module((HERE / "fixtures" / "nvcc_k_sm100.ptx").read_text(), bulk=False)
    assert all(fn.rows is None for fn in reference.functions)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_bulk_and_statement_paths_agree(path: Path) -> None:
    for index, source in enumerate(_mutants(path.read_text(), seed=len(path.name))):
        assert _render(source, bulk=True) == _render(source, bulk=False), f"mutant {index} of {path.name}"


@pytest.mark.parametrize("target", ["sm_75", "sm_90a", "sm_120a"])
def test_bulk_and_statement_paths_agree_on_other_targets(target: str) -> None:
    for path in MODULES[:9]:
        source = path.read_text()
        assert _render(source, bulk=True, target=target) == _render(source, bulk=False, target=target)


def test_bulk_statements_are_the_statement_loop_s() -> None:
    """Materialized on first read, a bulk body holds the statements the loop would have built."""
    source = (HERE / "fixtures" / "nvcc_k_sm75.ptx").read_text()
    bulk, reference = parse_module(source), parse_module(source, bulk=False)
    assert len(bulk.functions) == len(reference.functions)
    for ours, theirs in zip(bulk.functions, reference.functions, strict=True):
        assert [repr(vars(s)) if hasattr(s, "__dict__") else _fields(s) for s in ours.body] == [
            repr(vars(s)) if hasattr(s, "__dict__") else _fields(s) for s in theirs.body
        ]


def _fields(statement: object) -> tuple[object, ...]:
    slots = [name for cls in type(statement).__mro__ for name in getattr(cls, "__slots__", ())]
    return tuple(getattr(statement, name) for name in slots if name != "_operands")


PADDED = """.version 8.0
.target sm_90
.address_size 64
.visible .entry k(.param .u64 p0)
{{
.reg .pred %p<4>; .reg .b32 %r<16>; .reg .f32 %f<16>; .reg .b64 %rd<8>;
{decls}
{body}
ret;
}}
"""


def test_same_shape_ranges_of_different_types_are_told_apart() -> None:
    """`%a1b<4>` and `%a2b<4>` share the digit-free shape `%a0b0`: operand verdicts must not be
    shared between them (the shape memo once let the first, wrong use pass)."""
    body = "add.f32 %f1, %f2, %a1b1;\n" + "add.f32 %f1, %f2, %a2b1;\n" * 30
    source = PADDED.format(decls=".reg .u32 %a1b<4>; .reg .f32 %a2b<4>;", body=body)
    for bulk in (True, False):
        errors = [(d.code, d.line) for d in check_ptx(source, bulk=bulk) if d.is_error]
        assert errors == [(Codes.BAD_OPERAND, 8)]


def test_verdicts_shared_across_functions_respect_each_function_s_types() -> None:
    """Two long functions whose registers have the same names but not the same types."""
    body = "add.f32 %f1, %f2, %x3;\n" * 30
    first = PADDED.format(decls=".reg .f32 %x<8>;", body=body)
    second = first.replace(".entry k(", ".entry k2(").replace(".reg .f32 %x<8>;", ".reg .u32 %x<8>;")
    source = first + second.split(".address_size 64\n", 1)[1]
    for bulk in (True, False):
        lines = sorted({d.line or 0 for d in check_ptx(source, bulk=bulk) if d.is_error})
        assert len(lines) == 30 and min(lines) > first.count("\n")


@pytest.mark.parametrize(
    "source",
    [
        '.pragma "nounroll"; // a comment\nadd.f32 %f1, %f2, %f3; // another\n',
        '// "quoted" in a comment\n.pragma "a//b";\n',
        '.pragma "nounroll";\n  ld.global.f32 %f1, [%rd1]; // load "x"\n',
        '/* block */ .pragma "x"; // tail\n',
    ],
)
def test_comment_blanking_shortcuts_match_the_general_pattern(source: str) -> None:
    assert parse_module(source).text == _COMMENT.sub(_blank, source)
