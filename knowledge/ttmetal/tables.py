"""The TT-Metal API tables (`tables/api.yaml`): versions, moved includes, removed and deprecated names.

The API drifts quickly (include paths moved in 2026-02, compute inits renamed by 2026-10), so every
fact is keyed by version and every diagnostic says which version it assumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from kernelwright.errors import UserError

__all__ = ["ApiTables", "Rename", "load_tables"]


@dataclass(frozen=True)
class Rename:
    """An old include or name and what replaced it; `gone`/`deprecated` are version names or None."""

    old: str
    new: str
    kind: str
    gone: str | None
    deprecated: str | None


@dataclass(frozen=True)
class ApiTables:
    versions: tuple[str, ...]
    includes: tuple[Rename, ...]
    names: tuple[Rename, ...]
    headers: dict[str, str]
    binary_ops: dict[str, dict[str, str]]

    @property
    def newest(self) -> str:
        return self.versions[-1]

    def resolve_version(self, version: str | None) -> str:
        """A known version name: `version` itself, the newest known not newer than a ttnn version
        such as 0.82.0, or the newest when None. Unknown dates/names raise `UserError`."""
        if version is None:
            return self.newest
        if version in self.versions:
            return version
        numeric = _numeric(version)
        if numeric is not None:
            known = [(n, v) for v in self.versions if (n := _numeric(v)) is not None and n <= numeric]
            if known:
                return max(known)[1]
        raise UserError(
            f"unknown TT-Metal API version {version!r}; known: {', '.join(self.versions)} "
            "(set KERNELWRIGHT_TTMETAL_API_VERSION to one of them)"
        )

    def at_least(self, version: str, boundary: str | None) -> bool:
        """Whether `version` is `boundary` or newer (False for no boundary)."""
        if boundary is None:
            return False
        return self.versions.index(version) >= self.versions.index(boundary)


def _numeric(version: str) -> tuple[int, ...] | None:
    parts = version.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)
    return None


def _renames(rows: list[dict[str, Any]], versions: tuple[str, ...], default_kind: str) -> tuple[Rename, ...]:
    out = []
    for row in rows:
        rename = Rename(
            old=str(row["old"]),
            new=str(row["new"]),
            kind=str(row.get("kind", default_kind)),
            gone=str(row["gone"]) if row.get("gone") else None,
            deprecated=str(row["deprecated"]) if row.get("deprecated") else None,
        )
        for boundary in (rename.gone, rename.deprecated):
            if boundary is not None and boundary not in versions:
                raise ValueError(f"api.yaml: {rename.old} names unknown version {boundary}")
        out.append(rename)
    return tuple(out)


@cache
def load_tables() -> ApiTables:
    """Parse the packaged tables once."""
    text = resources.files("knowledge.ttmetal").joinpath("tables/api.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    versions = tuple(str(v["name"]) for v in data["versions"])
    return ApiTables(
        versions=versions,
        includes=_renames(data["includes"], versions, "include"),
        names=_renames(data["names"], versions, "any"),
        headers={str(k): str(v) for k, v in data["headers"].items()},
        binary_ops={str(k): {str(a): str(b) for a, b in v.items()} for k, v in data["binary_ops"].items()},
    )
