"""Jobs over real HTTP against `kernelwright serve`: live SSE events, Last-Event-ID, cancel, crash resume."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import Server, headers, problem_source, sse_events, transcript_replies, wait_for

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[3] / "shared"
TERMINAL = {"succeeded", "compiled_unverified", "budget_exhausted", "failed", "cancelled"}


def softmax_job(**extra: Any) -> dict[str, Any]:
    return {
        "problem": {"source": problem_source("softmax.py"), "name": "softmax"},
        "target": "triton",
        "provider": {"name": "scripted", "replies": transcript_replies("softmax_triton.json")},
        **extra,
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "home")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_job_streams_its_events_live_and_resumes_after_last_event_id(server: Server) -> None:
    client = httpx.Client(base_url=server.url, headers=headers(server.create_key()), timeout=30)
    created = client.post("/jobs", json=softmax_job())
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.json()["status"] in ("queued", "running")

    # follow live from the start, drop the connection after a few events, then resume from there
    first: list[dict[str, Any]] = []
    for event in sse_events(client, f"/jobs/{job_id}/events"):
        first.append(event)
        if len(first) == 4:
            break
    rest = list(sse_events(client, f"/jobs/{job_id}/events", last_event_id=first[-1]["id"]))
    assert rest[-1]["event"] == "end"
    stream = first + rest[:-1]
    ids = [e["id"] for e in stream]
    assert ids == list(range(1, len(ids) + 1)), "every event exactly once, in order"
    kinds = [e["event"] for e in stream]
    assert kinds[0] == "status" and kinds[1] == "run_started"
    assert kinds.count("verdict") == 2 and kinds.count("prompt") == 2
    assert [e["data"]["data"]["outcome"] for e in stream if e["event"] == "verdict"] == [
        "mismatch",
        "correct",
    ]
    assert all(e["data"]["replay"] for e in stream if e["event"] not in ("status",))
    assert stream[-1]["event"] == "status" and stream[-1]["data"]["status"] == "succeeded"

    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    result = job["result"]
    assert result["outcomes"] == ["mismatch", "correct"]
    assert result["best_turn"] == 2 and "ModelNew" in result["best_code"]
    assert result["citations"] and result["tokens_used"] == job["tokens_used"] > 0
    assert job["turns"] == 2

    # a finished stream replays in full and ends; a reconnect after the last id gets only the end
    assert len([e for e in sse_events(client, f"/jobs/{job_id}/events") if "id" in e]) == len(stream)
    assert [e["event"] for e in sse_events(client, f"/jobs/{job_id}/events", last_event_id=ids[-1])] == [
        "end"
    ]

    listed = client.get("/jobs").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == job_id
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'kernelwright_jobs{status="succeeded"} 1.0' in metrics
    assert 'kernelwright_verdicts_total{outcome="mismatch"} 1.0' in metrics
    assert "kernelwright_llm_tokens_total" in metrics and "kernelwright_queue_depth" in metrics
    # both candidates were verified on the service's runner: one CPU slot, healthy and idle now
    assert "kernelwright_runner_slots 1.0" in metrics and "kernelwright_gpu_leases 0.0" in metrics
    # request logs are structured and carry the job id
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(line.get("job_id") == job_id and line.get("event") == "request" for line in lines)


def test_cancel_stops_queued_and_running_jobs_and_not_finished_ones(server: Server) -> None:
    client = httpx.Client(base_url=server.url, headers=headers(server.create_key()), timeout=60)
    # four jobs on two run slots: the last ones wait in the queue
    ids = [client.post("/jobs", json=softmax_job()).json()["id"] for _ in range(4)]
    queued = client.post(f"/jobs/{ids[-1]}/cancel")
    assert queued.status_code == 200 and queued.json()["status"] == "cancelled"
    events = list(sse_events(client, f"/jobs/{ids[-1]}/events"))
    assert [e["event"] for e in events] == ["status", "end"] and events[0]["data"]["status"] == "cancelled"

    for event in sse_events(client, f"/jobs/{ids[0]}/events"):
        if event["event"] == "compiled":  # running, about to be verified in a sandbox worker
            break
    running = client.post(f"/jobs/{ids[0]}/cancel")
    assert running.status_code == 200 and running.json()["status"] == "cancelled"
    assert running.json()["finished_at"] is not None

    # the shared executor survives the cancellation: the other jobs still verify their kernels
    for job_id in ids[1:3]:
        done = wait_for(client, f"/jobs/{job_id}", lambda b: b["status"] in TERMINAL)
        assert done["status"] == "succeeded", done
    again = client.post(f"/jobs/{ids[1]}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    assert 'kernelwright_jobs{status="cancelled"} 2.0' in httpx.get(f"{server.url}/metrics").text


def test_a_job_killed_with_the_server_resumes_from_its_checkpoint(server: Server) -> None:
    token = server.create_key()
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    job_id = client.post("/jobs", json=softmax_job()).json()["id"]
    seen: list[dict[str, Any]] = []
    for event in sse_events(client, f"/jobs/{job_id}/events"):
        seen.append(event)
        if event["event"] == "retrieved" and event["data"]["turn"] == 2:  # attempt 1 filed: kill mid-run
            break
    server.stop(kill=True)
    server.start()
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    job = wait_for(client, f"/jobs/{job_id}", lambda b: b["status"] in TERMINAL)
    assert job["status"] == "succeeded", job
    assert job["result"]["outcomes"] == ["mismatch", "correct"]

    events = [e for e in sse_events(client, f"/jobs/{job_id}/events") if "id" in e]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    starts = [e["data"]["data"] for e in events if e["event"] == "run_started"]
    assert len(starts) == 2 and starts[1].get("resumed") is True
    # the second start resumed after the checkpointed steps: one more prompt, not two
    after_resume = events[[e["event"] for e in events].index("run_started", 2) :]
    assert [e["event"] for e in after_resume].count("prompt") <= 1
    # the first attempt was not redone (a second reply lost in the crash may be asked for again)
    assert [e["data"]["data"]["outcome"] for e in events if e["event"] == "verdict"] == [
        "mismatch",
        "correct",
    ]

    # every streamed event is a row of the service database
    db = sqlite3.connect(server.home / "service.sqlite")
    (count,) = db.execute("SELECT count(*) FROM job_events WHERE stream_id = ?", (job_id,)).fetchone()
    assert count == len(events)


def test_jobs_of_one_key_are_invisible_to_another(server: Server) -> None:
    mine = httpx.Client(base_url=server.url, headers=headers(server.create_key("a")), timeout=30)
    theirs = httpx.Client(base_url=server.url, headers=headers(server.create_key("b")), timeout=30)
    job_id = mine.post("/jobs", json=softmax_job()).json()["id"]
    assert theirs.get(f"/jobs/{job_id}").status_code == 404
    assert theirs.post(f"/jobs/{job_id}/cancel").status_code == 404
    assert theirs.get("/jobs").json()["count"] == 0
    wait_for(mine, f"/jobs/{job_id}", lambda b: b["status"] in TERMINAL)


def test_a_kernelbench_id_resolves_in_the_servers_dataset(tmp_path: Path) -> None:
    dataset = SHARED / "kernelbench" / "kernelbench.jsonl"
    if not dataset.is_file():
        pytest.skip("../shared/kernelbench/kernelbench.jsonl is absent")
    srv = Server(tmp_path / "home", KERNELWRIGHT_KERNELBENCH_SOURCE=str(dataset))
    srv.start()
    try:
        client = httpx.Client(base_url=srv.url, headers=headers(srv.create_key()), timeout=60)
        body = {
            "problem": {"kernelbench_id": "L1/19"},
            "target": "triton",
            "provider": {"name": "scripted", "replies": ["No code this time."]},
            "budgets": {"max_turns": 1},
        }
        created = client.post("/jobs", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["problem"] == "L1/19"
        done = wait_for(client, f"/jobs/{created.json()['id']}", lambda b: b["status"] in TERMINAL)
        assert done["status"] == "budget_exhausted" and done["result"]["outcomes"] == ["compile_error"]
        missing = client.post("/jobs", json={**body, "problem": {"kernelbench_id": "L1/99999"}})
        assert missing.status_code == 422 and "no KernelBench problem 'L1/99999'" in missing.json()["detail"]
        assert str(dataset) not in missing.text
        assert client.get("/jobs").json()["count"] == 1
    finally:
        srv.stop()
