"""The JSONL trace of a run: every prompt, reply, diagnostic, verdict, timing and token count.

One file per run (`$KERNELWRIGHT_HOME/traces/<run_id>.jsonl`), appended to, so a resumed run continues
the same file. Listeners (the CLI's progress display, later the API's event stream) see every event.

A process killed while appending can leave a torn last line. Each event is therefore one `write` on an
`O_APPEND` descriptor; a writer that opens a trace ending in a torn line cuts it off before appending
(the node that was emitting it had not finished, so a resume runs it again); and `read_trace` skips a
torn last line.
"""

from __future__ import annotations

import os
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
        _cut_torn_tail(path)

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
        line = (event.model_dump_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        for listener in self._listeners:
            listener(event)
        return event

    def finished(self) -> bool:
        """Whether the trace already ends the current run (or session round): a RUN_FINISHED after the
        last RUN_STARTED that was not a resume. True only when a kill fell between `record` writing
        that event and its checkpoint, and the resumed run is about to record again."""
        if not self.path.exists():
            return False
        for event in reversed(read_trace(self.path)):
            if event.kind == TraceKind.RUN_FINISHED:
                return True
            if event.kind == TraceKind.RUN_STARTED and not event.data.get("resumed"):
                return False
        return False


def read_trace(path: Path) -> list[TraceEvent]:
    """All events of a trace file, in order (a torn last line, left by a killed writer, is skipped)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1].strip():
        lines.pop()  # no newline after it: its writer died mid-line
    return [TraceEvent.model_validate_json(line) for line in lines if line.strip()]


def _cut_torn_tail(path: Path) -> None:
    """Truncate `path` after its last complete line, when a killed writer left a partial one."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        handle.truncate(data.rfind(b"\n") + 1)
