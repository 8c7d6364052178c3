"""Storage on Postgres: a throwaway cluster (initdb + pg_ctl on loopback), migrations, a job round-trip.

Skips when the PostgreSQL binaries are absent. initdb refuses to run as root, so as root the cluster is
created and started as the `postgres` user (runuser), in a temp folder that user may write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import (
    Server,
    free_port,
    headers,
    problem_source,
    sse_events,
    transcript_replies,
    wait_for,
)

pytestmark = pytest.mark.slow


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return ["runuser", "-u", "postgres", "--", *args]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not on PATH")
    root = Path(tempfile.mkdtemp(prefix="kw-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "kw", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "kw", "kernelwright"]),
            check=True,
            capture_output=True,
        )
        yield f"postgresql://kw@127.0.0.1:{port}/kernelwright"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_migrations_and_a_job_round_trip_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    server = Server(tmp_path / "home", database_url=postgres_url)
    server.cli("db", "upgrade")
    revisions = json.loads(server.cli("db", "current").stdout)
    assert revisions["current"] == revisions["head"] and revisions["current"]
    with psycopg.connect(postgres_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"api_keys", "jobs", "job_events", "sessions", "session_turns", "alembic_version"} <= tables

    server.start()
    try:
        token = server.create_key()
        client = httpx.Client(base_url=server.url, headers=headers(token), timeout=30)
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["revision"] == ready["head"]
        job_id = client.post(
            "/jobs",
            json={
                "problem": {"source": problem_source("softmax.py")},
                "target": "triton",
                "provider": {"name": "scripted", "replies": transcript_replies("softmax_triton.json")},
            },
        ).json()["id"]
        events = [e for e in sse_events(client, f"/jobs/{job_id}/events") if "id" in e]
        job = wait_for(client, f"/jobs/{job_id}", lambda b: b["status"] == "succeeded")
        assert job["result"]["outcomes"] == ["mismatch", "correct"]
    finally:
        server.stop()
    # nothing went to the SQLite defaults: service rows and LangGraph checkpoints are in Postgres
    assert not (tmp_path / "home" / "service.sqlite").exists()
    assert not (tmp_path / "home" / "checkpoints.sqlite").exists()
    with psycopg.connect(postgres_url) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM job_events WHERE stream_id = %s", (job_id,)).fetchone()
        (status,) = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
        (checkpoints,) = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (job_id,)
        ).fetchone()
    assert stored == len(events) and status == "succeeded"
    assert checkpoints > 0
