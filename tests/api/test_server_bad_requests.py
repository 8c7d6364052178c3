"""Bad requests get a 4xx with a message that says what was wrong, and change nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_process import Server, headers, problem_source, transcript_replies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("bad") / "home", KERNELWRIGHT_MAX_REQUEST_BYTES="200000")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.create_key()


def _snapshot(server: Server) -> dict[str, Any]:
    db = sqlite3.connect(server.home / "service.sqlite")
    try:
        tables = ("jobs", "job_events", "sessions", "session_turns")
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        counts["spent"] = db.execute("SELECT sum(spent_usd), sum(tokens_used) FROM api_keys").fetchone()
        return counts
    finally:
        db.close()


def _job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "problem": {"source": problem_source("relu.py")},
        "target": "triton",
        "provider": {"name": "scripted", "replies": transcript_replies("softmax_triton.json")},
    }
    body.update(overrides)
    return body


CASES = [
    ("unknown target", "POST", "/jobs", _job(target="opencl"), 422, "ptx"),
    (
        "malformed problem",
        "POST",
        "/jobs",
        _job(problem={"source": "import torch\nclass Model: pass\n"}),
        422,
        "get_inputs",
    ),
    (
        "problem that does not parse",
        "POST",
        "/jobs",
        _job(problem={"source": "def (:"}),
        422,
        "does not parse",
    ),
    ("no problem at all", "POST", "/jobs", _job(problem={}), 422, "exactly one of"),
    (
        "kernelbench id without a source",
        "POST",
        "/jobs",
        _job(problem={"kernelbench_id": "L1/19"}),
        400,
        "KERNELWRIGHT_KERNELBENCH_SOURCE",
    ),
    ("unknown provider", "POST", "/jobs", _job(provider={"name": "nope"}), 422, "known providers"),
    (
        "scripted without replies",
        "POST",
        "/jobs",
        _job(provider={"name": "scripted"}),
        400,
        "provider.replies",
    ),
    ("unknown field", "POST", "/jobs", {**_job(), "colour": "red"}, 422, "colour"),
    ("negative budget", "POST", "/jobs", _job(budgets={"max_turns": 0}), 422, "max_turns"),
    ("unknown job", "GET", "/jobs/job-doesnotexist", None, 404, "no job"),
    ("cancel unknown job", "POST", "/jobs/job-doesnotexist/cancel", None, 404, "no job"),
    ("unknown session", "GET", "/sessions/ses-nope", None, 404, "no session"),
    (
        "message to unknown session",
        "POST",
        "/sessions/ses-nope/messages",
        {"content": "hi"},
        404,
        "no session",
    ),
    ("fork unknown session", "POST", "/sessions/ses-nope/fork", {"turn": 0}, 404, "no session"),
    ("empty message", "POST", "/sessions/ses-nope/messages", {"content": ""}, 422, "content"),
    (
        "unknown target for a session",
        "POST",
        "/sessions",
        {"problem": {"source": problem_source("relu.py")}, "target": "x"},
        422,
        "target",
    ),
]


@pytest.mark.parametrize(("what", "method", "path", "body", "code", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_refused_and_changes_nothing(
    server: Server, token: str, what: str, method: str, path: str, body: Any, code: int, says: str
) -> None:
    before = _snapshot(server)
    response = httpx.request(method, f"{server.url}{path}", json=body, headers=headers(token), timeout=30)
    assert response.status_code == code, response.text
    assert says in response.text, f"{what}: {response.text}"
    assert _snapshot(server) == before


def test_bad_last_event_id_is_refused(server: Server, token: str) -> None:
    client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
    job_id = client.post("/jobs", json=_job(problem={"source": problem_source("softmax.py")})).json()["id"]
    response = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "soon"})
    assert response.status_code == 400 and "Last-Event-ID" in response.json()["detail"]
    client.post(f"/jobs/{job_id}/cancel")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_413_and_changes_nothing(server: Server, token: str, chunked: bool) -> None:
    before = _snapshot(server)
    big = _job(problem={"source": problem_source("relu.py") + "#" * 300_000})
    payload = httpx.Request("POST", "/", json=big).content
    content: Any = (
        iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)]) if chunked else payload
    )
    response = httpx.post(
        f"{server.url}/jobs",
        content=content,
        headers={**headers(token), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert "larger than 200000 bytes" in response.json()["detail"]
    assert _snapshot(server) == before


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ({}, "an API key is required"),
        ({"Authorization": "Bearer kw_nope_nope"}, "unknown or revoked"),
        ({"X-API-Key": "not-a-key"}, "unknown or revoked"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed Authorization"),
    ],
)
def test_missing_or_invalid_key_is_401_and_changes_nothing(
    server: Server, auth: dict[str, str], says: str
) -> None:
    before = _snapshot(server)
    for method, path in (("POST", "/jobs"), ("GET", "/jobs"), ("POST", "/sessions"), ("GET", "/keys/me")):
        response = httpx.request(method, f"{server.url}{path}", json=_job(), headers=auth, timeout=30)
        assert response.status_code == 401, (method, path, response.text)
        assert says in response.json()["detail"]
    assert _snapshot(server) == before


def test_health_metrics_and_docs_need_no_key(server: Server) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 200, path
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["revision"] == ready["head"]
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/jobs", "/jobs/{job_id}/events", "/sessions/{session_id}/messages"} <= set(spec["paths"])
