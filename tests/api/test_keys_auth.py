"""API keys: created and revoked from the CLI, hashed at rest, rate limits (429) and spending caps (402)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from server_process import Server, headers, problem_source, transcript_replies

from api.schemas.common import BudgetsIn
from api.services.keys import KeyRecord
from api.services.limits import RateLimiter
from api.services.requests import resolve_budgets
from kernelwright.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("keys") / "home")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _listed(listing: str, key_id: str) -> dict[str, object]:
    row: dict[str, object] = next(r for r in json.loads(listing) if r["id"] == key_id)
    return row


def _job() -> dict[str, object]:
    return {
        "problem": {"source": problem_source("softmax.py")},
        "target": "triton",
        "provider": {"name": "scripted", "replies": transcript_replies("softmax_triton.json")},
        "budgets": {"max_turns": 1},
    }


def test_keys_are_hashed_at_rest_listed_and_revoked(server: Server) -> None:
    token = server.create_key("ci robot")
    key_id, secret = token.removeprefix("kw_").split("_", 1)
    raw = (server.home / "service.sqlite").read_bytes()
    assert secret.encode() not in raw
    db = sqlite3.connect(server.home / "service.sqlite")
    (stored,) = db.execute("SELECT secret_sha256 FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()

    me = httpx.get(f"{server.url}/keys/me", headers={"X-API-Key": token})
    assert me.status_code == 200 and me.json()["name"] == "ci robot"
    listing = server.cli("keys", "list", "--format", "json").stdout
    assert secret not in listing
    assert {"id": key_id, "name": "ci robot", "revoked": False}.items() <= _listed(listing, key_id).items()

    # a wrong secret for a real key id is refused like an unknown key
    forged = f"kw_{key_id}_{'x' * len(secret)}"
    assert httpx.get(f"{server.url}/jobs", headers=headers(forged)).status_code == 401

    server.cli("keys", "revoke", key_id)
    refused = httpx.get(f"{server.url}/jobs", headers=headers(token))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert _listed(server.cli("keys", "list", "--format", "json").stdout, key_id)["revoked"] is True


def test_revoking_an_unknown_key_is_a_usage_error(server: Server) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        server.cli("keys", "revoke", "nosuchkey")
    assert info.value.returncode == 2 and "no key" in info.value.stderr


def test_rate_limit_is_429_with_retry_after(server: Server) -> None:
    token = server.create_key("chatty", "--rate-limit", "3")
    codes = [httpx.get(f"{server.url}/jobs", headers=headers(token)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = httpx.get(f"{server.url}/jobs", headers=headers(token))
    assert limited.status_code == 429
    assert "3 requests a minute" in limited.json()["detail"] and int(limited.headers["Retry-After"]) >= 1
    # other keys are not affected
    assert httpx.get(f"{server.url}/jobs", headers=headers(server.create_key())).status_code == 200


def test_spending_cap_is_402_and_creates_nothing(server: Server) -> None:
    token = server.create_key("broke", "--spend-cap", "0")
    refused = httpx.post(f"{server.url}/jobs", json=_job(), headers=headers(token))
    assert refused.status_code == 402 and "cost cap" in refused.json()["detail"]
    refused = httpx.post(f"{server.url}/sessions", json=_job(), headers=headers(token))
    assert refused.status_code == 402
    listed = httpx.get(f"{server.url}/jobs", headers=headers(token))
    assert listed.status_code == 200 and listed.json()["count"] == 0  # reading stays allowed


def test_rate_limiter_window_slides() -> None:
    key = KeyRecord("k", "k", 2, None, 0.0, 0, datetime.now(UTC), None)
    limiter = RateLimiter(100)
    assert limiter.check(key, now=0.0) is None and limiter.check(key, now=1.0) is None
    wait = limiter.check(key, now=2.0)
    assert wait is not None and wait == pytest.approx(58.0)
    assert limiter.check(key, now=60.5) is None  # the first hit left the window


def test_a_run_never_gets_more_cost_budget_than_its_key_has_left(settings: Settings) -> None:
    budgets = resolve_budgets(BudgetsIn(max_cost_usd=10.0), settings, spend_left=2.5)
    assert budgets.max_cost_usd == 2.5
    assert resolve_budgets(BudgetsIn(), settings, spend_left=100.0).max_cost_usd == settings.max_cost_usd
