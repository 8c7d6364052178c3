"""False-alarm regression: PTX that nvcc generated (fixtures/*.ptx, from fixtures/*.cu) must pass cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.ptx import check_ptx

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PTX_FILES = sorted(FIXTURES.glob("*.ptx"))


def test_fixtures_exist() -> None:
    assert len(PTX_FILES) >= 8


@pytest.mark.parametrize("path", PTX_FILES, ids=lambda p: p.name)
def test_nvcc_output_is_accepted(path: Path) -> None:
    found = [d for d in check_ptx(path.read_text(), filename=path.name) if d.is_error]
    assert found == [], "\n".join(d.render() for d in found)


@pytest.mark.parametrize("target", ["sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", "sm_100a", "sm_120a"])
def test_sm75_output_is_accepted_on_newer_targets(target: str) -> None:
    source = (FIXTURES / "nvcc_k_sm75.ptx").read_text()
    found = [d for d in check_ptx(source, target=target) if d.is_error]
    assert found == [], "\n".join(d.render() for d in found)
