"""Sessions over real HTTP: three user messages with server restarts between them, history, fork."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import Server, headers, problem_source, sse_events, transcript_replies, wait_for

pytestmark = pytest.mark.slow

FLAWED, FIXED = transcript_replies("softmax_triton.json")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "home")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _open_softmax(client: httpx.Client, replies: list[str]) -> str:
    """A new softmax session on the scripted provider; its id."""
    body = {
        "problem": {"source": problem_source("softmax.py")},
        "target": "triton",
        "provider": {"name": "scripted", "replies": replies},
    }
    session_id: str = client.post("/sessions", json=body).json()["id"]
    return session_id


def _waiting(client: httpx.Client, session_id: str) -> dict[str, Any]:
    return wait_for(client, f"/sessions/{session_id}", lambda b: b["status"] != "running")


def _prompts(client: httpx.Client, session_id: str) -> list[str]:
    return [
        e["data"]["data"]["user"]
        for e in sse_events(client, f"/sessions/{session_id}/events")
        if e["event"] == "prompt"
    ]


def test_session_takes_three_messages_across_server_restarts(server: Server) -> None:
    token = server.create_key()
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    created = client.post(
        "/sessions",
        json={
            "problem": {"source": problem_source("softmax.py"), "name": "softmax"},
            "target": "triton",
            "provider": {"name": "scripted", "replies": [FLAWED, FIXED]},
            "budgets": {"max_turns": 3},
        },
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    opening = _waiting(client, session_id)
    assert opening["status"] == "waiting", opening
    assert opening["turns"][0]["summary"]["outcomes"] == ["mismatch", "correct"]

    # message 1: the model answers with the fixed kernel again
    posted = client.post(
        f"/sessions/{session_id}/messages", json={"content": "use one program per row", "replies": [FIXED]}
    )
    assert posted.status_code == 202, posted.text
    busy = client.post(f"/sessions/{session_id}/messages", json={"content": "too early", "replies": [FIXED]})
    assert busy.status_code == 409 and "waiting" in busy.json()["detail"]
    first = _waiting(client, session_id)
    assert first["turns"][1]["summary"]["outcomes"] == ["mismatch", "correct", "correct"]

    server.restart()  # graceful restart between messages
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    # message 2: a flawed kernel, then its fix, within this round's turn budget
    client.post(
        f"/sessions/{session_id}/messages",
        json={"content": "keep masked lanes at -inf", "replies": [FLAWED, FIXED]},
    )
    second = _waiting(client, session_id)
    assert second["status"] == "waiting"
    assert second["turns"][2]["summary"]["outcomes"][-2:] == ["mismatch", "correct"]

    server.restart(kill=True)  # a crash between messages loses nothing either
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    client.post(
        f"/sessions/{session_id}/messages", json={"content": "this fails for N=1000", "replies": [FIXED]}
    )
    third = _waiting(client, session_id)
    assert [t["index"] for t in third["turns"]] == [0, 1, 2, 3]
    assert [t["message"] for t in third["turns"]] == [
        None,
        "use one program per row",
        "keep masked lanes at -inf",
        "this fails for N=1000",
    ]
    assert all(t["status"] == "done" for t in third["turns"])
    final = third["turns"][3]["summary"]
    assert final["outcomes"] == ["mismatch", "correct", "correct", "mismatch", "correct", "correct"]
    assert final["best_outcome"] == "correct" and "ModelNew" in final["best_code"]

    # each round's prompt carried every message so far, and the graph resumed rather than restarted
    prompts = _prompts(client, session_id)
    assert len(prompts) == 6
    assert "use one program per row" not in prompts[1]
    assert "use one program per row" in prompts[2]
    assert "keep masked lanes at -inf" in prompts[3] and "this fails for N=1000" in prompts[5]


def test_fork_continues_from_an_earlier_turn(server: Server) -> None:
    client = httpx.Client(base_url=server.url, headers=headers(server.create_key()), timeout=30)
    session_id = _open_softmax(client, [FIXED])
    _waiting(client, session_id)
    client.post(f"/sessions/{session_id}/messages", json={"content": "first idea", "replies": [FIXED]})
    _waiting(client, session_id)
    client.post(f"/sessions/{session_id}/messages", json={"content": "second idea", "replies": [FIXED]})
    _waiting(client, session_id)

    bad = client.post(f"/sessions/{session_id}/fork", json={"turn": 7})
    assert bad.status_code == 400 and "finished turns: [0, 1, 2]" in bad.json()["detail"]
    fork = client.post(f"/sessions/{session_id}/fork", json={"turn": 1})
    assert fork.status_code == 201, fork.text
    forked = fork.json()
    assert forked["status"] == "waiting" and forked["forked_from"] == session_id
    assert [t["message"] for t in forked["turns"]] == [None, "first idea"]

    client.post(f"/sessions/{forked['id']}/messages", json={"content": "another idea", "replies": [FIXED]})
    done = _waiting(client, forked["id"])
    assert done["turns"][2]["summary"]["outcomes"] == ["correct", "correct", "correct"]
    (prompt,) = _prompts(client, forked["id"])
    assert "first idea" in prompt and "another idea" in prompt and "second idea" not in prompt
    # the source session is untouched
    source = client.get(f"/sessions/{session_id}").json()
    assert [t["message"] for t in source["turns"]] == [None, "first idea", "second idea"]


def test_a_round_cut_by_a_crash_finishes_after_the_restart(server: Server) -> None:
    token = server.create_key()
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    session_id = _open_softmax(client, [FLAWED, FIXED])
    for event in sse_events(client, f"/sessions/{session_id}/events"):
        if event["event"] == "retrieved" and event["data"]["turn"] == 2:  # attempt 1 filed: crash now
            break
    server.restart(kill=True)
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    done = _waiting(client, session_id)
    assert done["status"] == "waiting", done
    assert done["turns"][0]["summary"]["outcomes"] == ["mismatch", "correct"]
    events = [e for e in sse_events(client, f"/sessions/{session_id}/events") if "id" in e]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    resumes = [e for e in events if e["event"] == "run_started" and e["data"]["data"].get("resumed")]
    assert len(resumes) == 1
    # finished steps are not redone (a reply lost in the crash may be asked for again)
    assert [e["data"]["data"]["outcome"] for e in events if e["event"] == "verdict"] == [
        "mismatch",
        "correct",
    ]


def test_cancel_stops_a_running_round_and_ends_the_session(server: Server) -> None:
    client = httpx.Client(base_url=server.url, headers=headers(server.create_key()), timeout=60)
    session_id = _open_softmax(client, [FIXED])
    _waiting(client, session_id)
    client.post(f"/sessions/{session_id}/messages", json={"content": "try again", "replies": [FIXED]})
    for event in sse_events(client, f"/sessions/{session_id}/events"):
        if event["event"] == "compiled" and event["data"]["turn"] == 2:  # round 1 is verifying its kernel
            break
    cancelled = client.post(f"/sessions/{session_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["error"] == "cancelled by the client"
    assert [t["status"] for t in body["turns"]] == ["done", "cancelled"]
    statuses = [
        e["data"]["status"]
        for e in sse_events(client, f"/sessions/{session_id}/events")
        if e["event"] == "status"
    ]
    assert statuses[-1] == "cancelled"  # the stream ends with the cancellation

    refused = client.post(f"/sessions/{session_id}/messages", json={"content": "more", "replies": [FIXED]})
    assert refused.status_code == 409 and "fork it" in refused.json()["detail"]
    again = client.post(f"/sessions/{session_id}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    fork = client.post(f"/sessions/{session_id}/fork", json={"turn": 0})  # finished turns stay forkable
    assert fork.status_code == 201 and fork.json()["status"] == "waiting"
    # a waiting session is closed by a cancel too
    closed = client.post(f"/sessions/{fork.json()['id']}/cancel").json()
    assert closed["status"] == "cancelled" and [t["status"] for t in closed["turns"]] == ["done"]
