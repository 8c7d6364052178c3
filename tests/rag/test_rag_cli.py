"""`kernelwright knowledge ingest|search|collections`, in-process with typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.knowledge_cli import knowledge_app

runner = CliRunner()


def test_ingest_search_json_and_collections(tmp_path: Path) -> None:
    home = tmp_path / "home"
    docs = tmp_path / "manual"
    docs.mkdir()
    (docs / "tiles.md").write_text(
        "# Tiles\n\nA tile is 32x32 values.\n\n## Sizes\n\nbfloat16 tiles take 2048 bytes.\n"
    )
    (docs / "noc.rst").write_text("NoC\n===\n\nnoc_async_read moves data from DRAM to L1.\n")
    result = runner.invoke(
        knowledge_app, ["ingest", str(docs), "--collection", "manual", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output
    result = runner.invoke(
        knowledge_app,
        [
            "search",
            "noc_async_read DRAM",
            "--collection",
            "manual",
            "--k",
            "2",
            "--format",
            "json",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits[0]["source"] == "manual/noc.rst"
    for key in ("source", "start_line", "end_line", "score", "text", "collection", "heading"):
        assert key in hits[0]
    assert (hits[0]["start_line"], hits[0]["end_line"]) == (1, 4)
    result = runner.invoke(knowledge_app, ["collections", "--format", "json", "--home", str(home)])
    assert json.loads(result.output) == [{"name": "manual", "embedding": "hashing", "files": 2, "chunks": 3}]
    again = runner.invoke(
        knowledge_app,
        ["ingest", str(docs), "--collection", "manual", "--format", "json", "--home", str(home)],
    )
    assert json.loads(again.output)["unchanged"] == 2


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    unknown = runner.invoke(knowledge_app, ["search", "x", "--collection", "nope", *home])
    assert unknown.exit_code == 2
    assert "known collections: builtin" in unknown.output
    assert runner.invoke(knowledge_app, ["ingest", str(tmp_path), *home]).exit_code == 2  # no --collection
    assert runner.invoke(knowledge_app, ["ingest", *home]).exit_code == 2
    missing = runner.invoke(
        knowledge_app, ["ingest", str(tmp_path / "nothing"), "--collection", "abc", *home]
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
    builtin = runner.invoke(knowledge_app, ["search", "cvta.to.global", "--format", "json", *home])
    assert builtin.exit_code == 0 and json.loads(builtin.output)[0]["collection"] == "builtin"
