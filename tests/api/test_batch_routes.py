"""Batches over real HTTP against `kernelwright serve`: create, progress, metrics, export, report, cancel."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import Server, headers
from test_batch_run import make_suite

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    suite, transcripts = make_suite(tmp_path / "kb", 3, kernel_every=3)
    srv = Server(
        tmp_path / "home", KERNELWRIGHT_KERNELBENCH_SOURCE=str(suite), KERNELWRIGHT_TIMING_TRIALS="0"
    )
    srv.start()
    try:
        yield srv, transcripts
    finally:
        srv.stop()


def _wait_done(client: httpx.Client, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/batches/{batch_id}").json()
        if body["status"] in ("done", "cancelled", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} did not finish: {body}")


def test_batch_over_http(served: tuple[Server, Path]) -> None:
    server, transcripts = served
    client = httpx.Client(base_url=server.url, headers=headers(server.create_key()), timeout=30)
    reply = json.loads((transcripts / "L1_1.json").read_text())["replies"][0]["text"]
    created = client.post(
        "/batches",
        json={
            "name": "smoke",
            "suite": {"levels": [1]},
            "target": "triton",
            "provider": "scripted",
            "models": ["scripted-a", "scripted-b"],
            "replies": [reply],
            "budgets": {"max_turns": 1},
            "limit_llm": 2,
        },
    )
    assert created.status_code == 201, created.text
    batch = created.json()
    assert batch["progress"]["total"] == 6 and set(batch["progress"]["per_problem"]) == {
        "L1/1",
        "L1/2",
        "L1/3",
    }

    done = _wait_done(client, batch["id"])
    assert done["status"] == "done", done
    assert done["progress"]["by_status"] == {"done": 6}
    overall = done["metrics"]["overall"]
    # the one kernel is right for L1/1 (x * 1.0) and wrong for the other two problems
    assert overall["samples"] == 6 and overall["correct"] == 2 and overall["compiled"] == 6
    assert overall["correctness_rate"] == pytest.approx(2 / 6)
    assert overall["fast_p_eager"]["fast_1"] is None  # no GPU here: correct kernels were not timed
    assert set(done["metrics"]["per_model"]) == {"scripted-a", "scripted-b"}

    listed = client.get("/batches").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == batch["id"]

    exported = client.get(f"/batches/{batch['id']}/export", params={"format": "json"}).json()
    assert exported["schema"] == "kernelwright.batch/1" and len(exported["samples"]) == 6
    text = client.get(f"/batches/{batch['id']}/export", params={"format": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert len(rows) == 6 and {r["outcome"] for r in rows} == {"correct", "mismatch"}

    page = client.get(f"/batches/{batch['id']}/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "Outcomes per level" in page.text and "<script" not in page.text

    # cancelling a finished batch changes nothing
    assert client.post(f"/batches/{batch['id']}/cancel").json()["status"] == "done"


def test_bad_batch_requests_get_clear_4xx(served: tuple[Server, Path]) -> None:
    server, _ = served
    client = httpx.Client(base_url=server.url, headers=headers(server.create_key()), timeout=30)
    assert httpx.get(f"{server.url}/batches").status_code == 401
    assert client.get("/batches/nope").status_code == 404
    assert client.get("/batches/nope/report").status_code == 404
    both = {"suite": {}, "problems": [{"source": "x"}], "target": "triton"}
    assert client.post("/batches", json=both).status_code == 422
    unknown_id = client.post(
        "/batches",
        json={"suite": {"ids": ["L9/99"]}, "target": "triton", "provider": "scripted", "replies": ["x"]},
    )
    assert unknown_id.status_code == 422 and "L9/99" in unknown_id.json()["detail"]
    no_replies = client.post("/batches", json={"suite": {}, "target": "triton", "provider": "scripted"})
    assert no_replies.status_code == 400 and "replies" in no_replies.json()["detail"]
    bad_format = client.get("/batches/nope/export", params={"format": "xml"})
    assert bad_format.status_code == 422
    assert client.get("/batches").json()["count"] == 0  # nothing was created
