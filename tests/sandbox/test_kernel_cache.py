"""The shared cache key and folder: both sides must compute the same names, and never collide."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.runtime.kernel_cache import (
    CACHE_ENV,
    cache_dir,
    cache_key,
    cached_cubin,
    format_arch,
    ptx_target,
    resolve_arch,
    store_cubin,
)


def test_key_is_stable_hex_sha256() -> None:
    key = cache_key("ptx", ".version 8.0", "sm_90")
    assert key == cache_key("ptx", ".version 8.0", "sm_90")
    assert len(key) == 64
    int(key, 16)
    # Pinned: a change of the encoding must be deliberate (it invalidates every cache).
    assert key == cache_key("ptx", ".version 8.0", "sm_90", ())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("ptx", "x", "sm_90", ()), ("cuda", "x", "sm_90", ())),
        (("ptx", "x", "sm_90", ()), ("ptx", "x", "sm_80", ())),
        (("cuda", "x", "sm_90", ()), ("cuda", "x", "sm_90", ("-use_fast_math",))),
        (("cuda", "x", "sm_90", ("-a", "-b")), ("cuda", "x", "sm_90", ("-a -b",))),
        (("cuda", "x", "sm_90", ("-a",)), ("cuda", "-a\0x", "sm_90", ())),
        (("ptx", "x", "sm_90", ()), ("ptx", "x ", "sm_90", ())),
    ],
)
def test_key_separates_inputs(
    a: tuple[str, str, str, tuple[str, ...]], b: tuple[str, str, str, tuple[str, ...]]
) -> None:
    assert cache_key(a[0], a[1], a[2], a[3]) != cache_key(b[0], b[1], b[2], b[3])  # type: ignore[arg-type]


def test_key_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        cache_key("triton", "x", "sm_90")  # type: ignore[arg-type]


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_dir() is None
    monkeypatch.setenv(CACHE_ENV, "  ")
    assert cache_dir() is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir() == tmp_path


def test_store_and_find(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    key = cache_key("ptx", "src", "sm_90")
    assert cached_cubin(key) is None
    path = store_cubin(key, b"\x7fELF...")
    assert path == tmp_path / "cache" / f"{key}.cubin"
    assert cached_cubin(key) == path
    assert path.read_bytes() == b"\x7fELF..."
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_store_without_cache_or_unwritable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert store_cubin("k", b"x") is None
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert store_cubin("k", b"x", blocker / "sub") is None


def test_empty_cubin_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / "k.cubin").write_bytes(b"")
    assert cached_cubin("k", tmp_path) is None


def test_arch_helpers() -> None:
    assert format_arch(9, 0) == "sm_90"
    assert ptx_target(".version 8.0\n  .target sm_90a\n") == "sm_90a"
    assert ptx_target(".version 8.0\n") is None
    assert resolve_arch("ptx", ".target sm_90a", "sm_90") == "sm_90a"
    assert resolve_arch("ptx", ".target sm_100a", "sm_90") == "sm_90"
    assert resolve_arch("ptx", ".target sm_80", "sm_90") == "sm_90"
    assert resolve_arch("cuda", ".target sm_90a", "sm_90") == "sm_90"
