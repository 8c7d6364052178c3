"""Per-key request rate limits (a sliding one-minute window, in memory) and spending caps (from the DB).

Rate windows live in this process: with several server processes each enforces its own window. Spending
is summed in the database, so caps hold across processes and restarts.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from api.services.keys import KeyRecord
from kernelwright.settings import Settings

__all__ = ["RateLimiter", "remaining_spend"]


class RateLimiter:
    """At most N requests per key in any 60-second window."""

    def __init__(self, default_per_minute: int, *, window_s: float = 60.0) -> None:
        self.default_per_minute = default_per_minute
        self.window_s = window_s
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def check(self, key: KeyRecord, now: float | None = None) -> float | None:
        """Count one request; None when allowed, else the seconds until the next one would be."""
        now = time.monotonic() if now is None else now
        limit = key.rate_limit_per_minute or self.default_per_minute
        hits = self._hits[key.id]
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= limit:
            return self.window_s - (now - hits[0])
        hits.append(now)
        return None


def remaining_spend(key: KeyRecord, settings: Settings) -> float:
    """Dollars of LLM cost this key may still spend (never negative)."""
    cap = key.spend_cap_usd if key.spend_cap_usd is not None else settings.spend_cap_usd
    return max(0.0, cap - key.spent_usd)
