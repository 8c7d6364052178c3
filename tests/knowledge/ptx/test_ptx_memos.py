"""The checker's per-process memos and shortcuts must never change what it says.

- Memos shared across modules (opcode analyses and plans, operand readings, declaration parses,
  hints) give the same diagnostics warm as cold, whatever order of targets filled them.
- An operand reading never lets through an instruction the full operand check reports on.
- The bulk path reports on chosen rows without building a body: the instructions it builds for them
  are the statement loop's, and a body with faults far apart stays in bulk.
- The hint matcher and the lazy line numbers are exact stand-ins for difflib and the line table.
"""

from __future__ import annotations

import difflib
import random
from pathlib import Path

import pytest

from knowledge.ptx import Codes, check_ptx, load_tables
from knowledge.ptx.checker import (
    _analyze,
    _Checker,
    _close,
    _Plan,
    _plans_for,
    _Scope,
    _usable_sregs,
    clear_memos,
)
from knowledge.ptx.parser import Directive, Instruction, Label, Module, parse_module

HERE = Path(__file__).resolve().parent
NVCC_CORPUS = HERE.parents[2] / "bench" / "results" / "ptx_nvcc_corpus"
MODULES = sorted((HERE / "fixtures").glob("*.ptx")) + sorted(NVCC_CORPUS.glob("*.ptx"))[::4]
TARGETS = [None, "sm_75", "sm_90a", "sm_120a"]


def _render(source: str, target: str | None) -> list[tuple[object, ...]]:
    return [
        (d.code, d.message, d.severity, d.line, d.column, d.hint)
        for d in check_ptx(source, target=target, filename="m.ptx")
    ]


def test_warm_memos_say_what_cold_ones_do() -> None:
    """Fill the memos over every module and target first, then check each one from scratch."""
    sources = [path.read_text() for path in MODULES]
    sources += [s.replace(".version", ".version 6.0 //", 1) for s in sources[:6]]  # old .version
    clear_memos()
    warm = {(i, t): _render(s, t) for t in TARGETS for i, s in enumerate(sources)}
    for (index, target), found in warm.items():
        clear_memos()
        assert _render(sources[index], target) == found, (MODULES[index % len(MODULES)].name, target)


def test_operand_readings_never_hide_an_operand_fault() -> None:
    """For every instruction of real modules and of faulty variants: when the full operand check
    reports something, `operands_ok` (served from the plan's reading memo) says no."""
    tables = load_tables()
    bodies = [
        "add.f32 %f1, %f2, %rd1;",
        "add.f32 %f1, %f2;",
        "ld.global.v4.f32 {%f1, %f2}, [%rd1];",
        "ld.global.f32 %f1, %rd1;",
        "st.global.f32 %f1, [%rd1];",
        "mov.b32 %r1, %rd1;",
        "setp.lt.f32 %r1, %f1, %f2;",
        "add.s32 %r1, %r2, %r3 | %r4;",
    ]
    sources = [path.read_text() for path in MODULES[:12]]
    sources += [sources[0].replace("ret;", body + "\nret;", 1) for body in bodies]
    checked = faulty = 0
    for source in sources:
        module = parse_module(source, bulk=False)
        checker = _Checker(tables, module, None, None)
        checker.check_header()
        checker.usable_sregs = _usable_sregs(checker.target, checker.version)
        checker.plans = _plans_for(checker.target, checker.version)
        for fn in module.functions:
            scope = _Scope()  # as `check_function` builds it
            scope.symbols.update(fn.params)
            for statement in fn.body:
                if isinstance(statement, Label):
                    scope.symbols.add(statement.name)
                elif isinstance(statement, Directive):
                    checker.check_directive(statement, scope)
            for ins in (s for s in fn.body if isinstance(s, Instruction)):
                plan = checker.plan(ins.opcode)
                if not isinstance(plan, _Plan):
                    continue
                result = _analyze(ins.opcode, checker.target, checker.version)
                assert result.form is not None
                mark = len(checker.found)
                checker.check_operands(ins, result.form, result, scope)
                reported = len(checker.found) > mark
                del checker.found[mark:]
                checked += 1
                if reported:
                    faulty += 1
                    assert not checker.operands_ok(ins.rest, plan, scope), ins.text
    assert checked > 500 and faulty >= len(bodies) - 1


def test_rows_of_a_bulk_body_build_the_statement_loop_s_instructions() -> None:
    source = (HERE / "fixtures" / "nvcc_k_sm100.ptx").read_text()
    bulk, reference = parse_module(source), parse_module(source, bulk=False)
    slots = ("pos", "opcode", "opcode_pos", "guard", "guard_pos", "rest", "rest_pos", "text")
    compared = 0
    for ours, theirs in zip(bulk.functions, reference.functions, strict=True):
        if ours.rows is None:
            continue
        opcodes = ours.rows[3]
        indices = [i for i, opcode in enumerate(opcodes) if opcode]
        built = ours.instructions_at(indices)
        expected = [s for s in theirs.body if isinstance(s, Instruction)]
        assert [tuple(getattr(i, n) for n in slots) for i in built] == [
            tuple(getattr(i, n) for n in slots) for i in expected
        ]
        compared += len(built)
        sparse = ours.instructions_at(indices[1::7])
        assert [i.pos for i in sparse] == [i.pos for i in expected[1::7]]
    assert compared > 500


def test_faults_far_apart_are_reported_from_a_body_kept_in_bulk() -> None:
    source = (HERE / "fixtures" / "nvcc_k_sm100.ptx").read_text()
    lines = source.split("\n")
    picked = [i for i, line in enumerate(lines) if line.strip().startswith("add.s32")][:1]
    picked += [i for i, line in enumerate(lines) if line.strip().startswith("ld.global.f32")][-1:]
    assert len(picked) == 2
    lines[picked[0]] = lines[picked[0]].replace("add.s32", "add.zz.s32")
    lines[picked[1]] = lines[picked[1]].replace("ld.global.f32", "ld.global.f32.qq")
    mutated = "\n".join(lines)
    module = parse_module(mutated)
    assert all(fn.rows is not None for fn in module.functions if len(fn.body) > 60)
    errors = [(d.code, d.line) for d in check_ptx(mutated) if d.is_error]
    assert errors == [(Codes.BAD_MODIFIER, picked[0] + 1), (Codes.BAD_MODIFIER, picked[1] + 1)]
    assert errors == [(d.code, d.line) for d in check_ptx(mutated, bulk=False) if d.is_error]


def test_close_is_difflib() -> None:
    rng = random.Random(3)
    vocabulary = [*sorted(load_tables().full_names), "", ".f32", ".global", "a", "%tid.x"]
    for _ in range(300):
        word = "".join(rng.choice("abcdefglnorstux.0123") for _ in range(rng.randint(0, 9)))
        choices = rng.sample(vocabulary, rng.randint(0, 60))
        n, cutoff = rng.choice([(1, 0.6), (3, 0.6), (1, 0.75), (2, 0.0), (1, 1.0)])
        assert _close(word, choices, n, cutoff) == difflib.get_close_matches(word, choices, n, cutoff)


@pytest.mark.parametrize("text", ["", "x", "\n", "a\nbc\n\nd", "\n\nlast", "ab\r\ncd\n"])
def test_lazy_line_numbers_match_the_line_table(text: str) -> None:
    for pos in range(len(text) + 1):
        counted, table = Module(text), Module(text)
        assert table.line_starts is not None
        assert counted.line_col(pos) == table.line_col(pos)
    many = Module(text)
    assert [many.line_col(p) for p in range(len(text) + 1) for _ in range(3)] == [
        Module(text).line_col(p) for p in range(len(text) + 1) for _ in range(3)
    ]
