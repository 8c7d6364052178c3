"""The JSONL trace of a run: every prompt, reply, diagnostic, verdict, timing and token count.

One file per run (`$KERNELWRIGHT_HOME/traces/<run_id>.jsonl`), appended to, so a resumed run continues
the same file. Listeners (the CLI's progress display, later the API's event stream) see every event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernelwright.domain import TraceEvent, TraceKind

__all__ = ["TraceListener", "TraceWriter", "read_trace"]

TraceListener = Callable[[TraceEvent], None]


class TraceWriter:
    def __init__(
        self, path: Path, run_id: str, *, replay: bool, listeners: tuple[TraceListener, ...] = ()
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.replay = replay
        self._listeners = listeners
        path.parent.mkdir(parents=True, exist_ok=True)

    def emit(
        self, kind: TraceKind, node: str, *, turn: int = 0, duration_s: float | None = None, **data: Any
    ) -> TraceEvent:
        event = TraceEvent(
            run_id=self.run_id,
            kind=kind,
            node=node,
            turn=turn,
            duration_s=duration_s,
            replay=self.replay,
            data=data,
        )
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(event.model_dump_json() + "\n")
        for listener in self._listeners:
            listener(event)
        return event


def read_trace(path: Path) -> list[TraceEvent]:
    """All events of a trace file, in order."""
    with path.open(encoding="utf-8") as handle:
        return [TraceEvent.model_validate_json(line) for line in handle if line.strip()]
