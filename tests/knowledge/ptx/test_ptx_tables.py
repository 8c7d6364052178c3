"""The YAML tables: they load, validate, expand mechanically, and render as prompt knowledge."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.errors import ConfigError
from knowledge.ptx import legal_forms_text, load_tables
from knowledge.ptx.tables import build_tables, tables_dir

FAMILIES = {"sm_75", "sm_80", "sm_86_89", "sm_90", "sm_100a", "sm_120a"}


def test_tables_load_once_with_every_family() -> None:
    tables = load_tables()
    assert load_tables() is tables
    assert set(tables.families) >= FAMILIES
    for name in ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", "sm_100a", "sm_120a"):
        assert name in tables.targets


@pytest.mark.parametrize(
    "name",
    [
        "ld",
        "st",
        "ldu",
        "cvta",
        "mov",
        "prmt",
        "add",
        "sub",
        "mul",
        "mad",
        "fma",
        "min",
        "max",
        "shl",
        "shr",
        "bfe",
        "bfi",
        "popc",
        "clz",
        "brev",
        "cvt",
        "setp",
        "selp",
        "set",
        "bra",
        "call",
        "ret",
        "exit",
        "bar",
        "barrier",
        "membar",
        "fence",
        "fence.proxy",
        "mbarrier.init",
        "mbarrier.arrive",
        "mbarrier.try_wait",
        "shfl.sync",
        "vote.sync",
        "match.sync",
        "redux.sync",
        "atom",
        "red",
        "cp.async",
        "cp.async.bulk",
        "cp.async.bulk.tensor",
        "cp.reduce.async.bulk",
        "ldmatrix",
        "stmatrix",
        "mma",
        "wgmma.mma_async",
        "tcgen05.mma",
        "tensormap.replace",
    ],
)
def test_required_families_are_covered(name: str) -> None:
    tables = load_tables()
    assert any(f.name == name for forms in tables.forms_by_base.values() for f in forms), name


def test_every_form_expands_mechanically() -> None:
    """What a probe needs: slots with values, each value with its own requirement, operand shapes."""
    tables = load_tables()
    for form in tables.forms_by_id.values():
        for slot in form.slots:
            assert slot.values, (form.id, slot.name)
            for value in slot.values:
                assert value.value.startswith(".") and "." not in value.value[1:]
                assert value.req is slot.index[value.value]
        if form.operands is not None:
            assert form.min_operands <= form.max_operands == len(form.operands)


def test_value_requirements_are_per_value() -> None:
    add = load_tables().forms_by_id["add"]
    types = next(s for s in add.slots if s.name == "type").index
    assert types[".f32"].empty
    assert types[".bf16x2"].sm == 90 and types[".bf16x2"].ptx == (7, 8)
    wgmma = load_tables().forms_by_id["wgmma.mma_async"]
    assert wgmma.req.arch == frozenset({90})


def test_invalid_table_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "sm_99.yaml"
    bad.write_text(
        "family: sm_99\nprovenance: test\ninstructions: [{name: foo, slots: [{name: x, values: [.a.b]}]}]\n"
    )
    base = tables_dir() / "sm_75.yaml"
    with pytest.raises(ConfigError, match="inner dots"):
        build_tables([base, bad])


def test_new_family_file_extends_without_code(tmp_path: Path) -> None:
    extra = tmp_path / "sm_999.yaml"
    extra.write_text(
        "family: sm_999\nprovenance: test\n"
        "targets: [{name: sm_999, ptx: '9.0'}]\n"
        "extend: [{form: add, slot: type, values: [{values: [.f8x4], ptx: '9.0', sm: sm_999}]}]\n"
    )
    tables = build_tables([*tables_dir().glob("*.yaml"), extra])
    assert "sm_999" in tables.targets
    assert ".f8x4" in next(s for s in tables.forms_by_id["add"].slots if s.name == "type").index


def test_legal_forms_text_for_prompts() -> None:
    text = legal_forms_text(["add", "cp.async", "wgmma.mma_async", "nosuch"], "sm_80", "7.0")
    assert "PTX forms legal on sm_80" in text
    assert ".f16x2" in text
    assert ".bf16x2 (sm_90+, PTX 7.8)" in text  # listed apart, with what it needs
    assert "cp.async" in text
    assert "NOT available" in text  # wgmma on sm_80
    assert "nosuch: not a PTX instruction" in text
    assert legal_forms_text(["wgmma.mma_async"], "sm_90a").count("NOT available") == 0
