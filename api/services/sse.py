"""Server-sent events over a stored event stream: replay after `Last-Event-ID`, then follow live.

Each event carries `id: <seq>`, so a client that reconnects with `Last-Event-ID` misses nothing and gets
nothing twice. The stream ends with an `end` event once the run is finished and everything was sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

from api.db.engine import Database
from api.services.events import EventHub, read_events

__all__ = ["event_stream", "parse_last_event_id"]

KEEPALIVE_S = 15.0


def parse_last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    try:
        seq = int(value.strip())
    except ValueError:
        raise ValueError(f"Last-Event-ID must be an event number, got {value!r}") from None
    if seq < 0:
        raise ValueError("Last-Event-ID must not be negative")
    return seq


async def event_stream(
    db: Database,
    hub: EventHub,
    stream_id: str,
    after: int,
    finished: Callable[[], Awaitable[bool]],
    *,
    poll_s: float = 1.0,
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    idle = 0.0
    while True:
        done = await finished()  # read before the events: nothing stored after it is missed
        rows = await read_events(db, stream_id, after)
        for row in rows:
            after = row.seq
            yield f"id: {row.seq}\nevent: {row.kind}\ndata: {json.dumps(row.payload)}\n\n"
        if rows:
            idle = 0.0
            continue
        if done:
            yield f"event: end\ndata: {json.dumps({'last_event_id': after})}\n\n"
            return
        await hub.wait(stream_id, poll_s)
        idle += poll_s
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"
