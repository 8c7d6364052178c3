"""Levels of the tt-metal checks: the syntax check against fetched ttnn headers catches what the static
checks cannot (misspelled APIs, compile-time indices via the headers' static_assert); without headers
or TT_METAL_HOME the level stays honest."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from kernelwright.errors import UserError
from kernelwright.settings import Settings
from knowledge.ttmetal import Project
from sandbox.ttmetal_build import Level, check_ttmetal, gxx_m32_available
from sandbox.ttmetal_fetch import extract_headers, installed_headers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ttmetal" / "eltwise_add_single"
WRITER = "kernels/dataflow/write_tiles.cpp"


def _headers() -> Path | None:
    explicit = os.environ.get("KERNELWRIGHT_TTMETAL_HEADERS")
    if explicit:
        return Path(explicit)
    found = installed_headers(Settings(_env_file=None))
    return found[0] if found else None


@pytest.fixture
def with_headers(settings: Settings) -> Settings:
    headers = _headers()
    if headers is None or not gxx_m32_available():
        pytest.skip("needs `kernelwright toolchains fetch tt-metal` and g++-multilib (g++ -m32)")
    return settings.model_copy(update={"ttmetal_headers": headers, "tt_metal_home": None})


def test_without_headers_the_level_is_static(settings: Settings) -> None:
    bare = settings.model_copy(update={"tt_metal_home": None, "ttmetal_headers": None})
    report = check_ttmetal(Project.from_dir(EXAMPLE), bare)
    assert report.valid and report.level == Level.STATIC_CHECKED
    assert any("toolchains fetch tt-metal" in n for n in report.notes)
    assert report.to_json() == {"valid": True, "level": "static_checked", "diagnostics": []}


def test_static_errors_stop_before_the_syntax_check(settings: Settings) -> None:
    files = dict(Project.from_dir(EXAMPLE).files)
    files[WRITER] = files[WRITER].replace("noc_async_write_barrier();", "")
    report = check_ttmetal(Project(files), settings)
    assert not report.valid and report.level == Level.STATIC_CHECKED
    assert report.to_json()["diagnostics"][0]["code"] == "ttm.noc.missing_write_barrier"  # type: ignore[index]


def test_tt_metal_home_that_is_not_a_checkout_is_reported(settings: Settings, tmp_path: Path) -> None:
    report = check_ttmetal(Project.from_dir(EXAMPLE), settings.model_copy(update={"tt_metal_home": tmp_path}))
    assert report.valid and report.level != Level.BUILT
    assert [d.code for d in report.diagnostics] == ["ttm.build.no_tt_metal"]


def test_syntax_check_passes_the_example(with_headers: Settings) -> None:
    report = check_ttmetal(Project.from_dir(EXAMPLE), with_headers)
    assert report.valid and report.level == Level.SYNTAX_CHECKED, report.diagnostics
    assert any("compute kernels static-checked only" in n for n in report.notes)


def test_syntax_check_catches_a_misspelled_api(with_headers: Settings) -> None:
    files = dict(Project.from_dir(EXAMPLE).files)
    files[WRITER] = files[WRITER].replace("noc_async_write_tile(", "noc_async_write_tiles(")
    report = check_ttmetal(Project(files), with_headers)
    assert not report.valid and report.level == Level.SYNTAX_CHECKED
    found = [d for d in report.diagnostics if d.code == "ttm.syntax.error"]
    assert found and found[0].file == WRITER and found[0].line is not None
    assert "noc_async_write_tiles" in found[0].message


def test_syntax_check_sees_the_host_compile_time_args(with_headers: Settings) -> None:
    """The host's args become KERNEL_COMPILE_TIME_ARGS: an index past them trips a static_assert."""
    files = dict(Project.from_dir(EXAMPLE).files)
    files[WRITER] = files[WRITER].replace(
        "const uint32_t tile_bytes = get_tile_size(cb_out);",
        "const uint32_t tile_bytes = get_tile_size(cb_out) + get_compile_time_arg_val(sizeof(uint64_t) - 6);",
    )
    report = check_ttmetal(Project(files), with_headers)
    assert not report.valid
    assert any(
        "out of range" in d.message.lower() or "static assert" in d.message for d in report.diagnostics
    )


def test_extract_headers_from_a_wheel(tmp_path: Path, settings: Settings) -> None:
    settings = settings.model_copy(update={"ttmetal_headers": None})
    wheel = tmp_path / "ttnn-9.9.9-cp312-cp312-manylinux_2_34_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("ttnn/tt_metal/hw/inc/api/dataflow/dataflow_api.h", "#pragma once\n")
        archive.writestr("ttnn/tt_metal/pre-compiled/1/brisc.elf", b"\x7fELF")
        archive.writestr("ttnn/ttnn/__init__.py", "")
    parent = settings.toolchains_dir / "tt-metal"
    parent.mkdir(parents=True)
    result = extract_headers(wheel, parent)
    assert result.version == "9.9.9" and result.files == 1
    assert (result.root / "tt_metal/hw/inc/api/dataflow/dataflow_api.h").is_file()
    assert not (result.root / "tt_metal/pre-compiled").exists()
    assert installed_headers(settings) == (result.root, "9.9.9")
    with pytest.raises(UserError, match="not a ttnn wheel"):
        extract_headers(tmp_path / "other-1.0.whl", parent)
