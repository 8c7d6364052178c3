"""A trace survives a writer killed mid-line: the torn line is skipped when read and cut off when a
resumed run appends (CI once read a trace whose torn line ran into the resumed run's first event)."""

from __future__ import annotations

from pathlib import Path

from agent.trace import TraceWriter, read_trace
from kernelwright.domain import TraceKind


def _writer(path: Path) -> TraceWriter:
    return TraceWriter(path, "run-torn", replay=True)


def test_a_torn_last_line_is_skipped_and_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "run-torn.jsonl"
    first = _writer(path)
    first.emit(TraceKind.RUN_STARTED, "start", provider="scripted")
    first.emit(TraceKind.PROMPT, "propose", turn=1, text="x" * 20000)  # longer than any write buffer
    whole = path.read_bytes()
    with path.open("ab") as handle:  # what a SIGKILL in the middle of the next event leaves
        handle.write(whole.splitlines(keepends=True)[1][:3021])
    assert [e.kind for e in read_trace(path)] == [TraceKind.RUN_STARTED, TraceKind.PROMPT]

    resumed = _writer(path)  # a resumed run opens the same trace
    assert path.read_bytes() == whole
    resumed.emit(TraceKind.RUN_STARTED, "resume", resumed=True)
    events = read_trace(path)
    assert [e.kind for e in events] == [TraceKind.RUN_STARTED, TraceKind.PROMPT, TraceKind.RUN_STARTED]
    assert events[1].data["text"] == "x" * 20000 and events[2].data["resumed"] is True


def test_a_trace_torn_in_its_first_line_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "run-torn.jsonl"
    path.write_text('{"run_id": "run-torn", "kind": "run_st')
    assert read_trace(path) == []
    _writer(path).emit(TraceKind.RUN_STARTED, "start")
    assert [e.kind for e in read_trace(path)] == [TraceKind.RUN_STARTED]


def test_finished_tells_a_recorded_end_from_a_run_or_round_still_open(tmp_path: Path) -> None:
    """`record` asks before writing RUN_FINISHED, so a run killed between that event and its checkpoint
    does not finish twice when resumed; a new session round (a fresh RUN_STARTED) is open again."""
    trace = _writer(tmp_path / "run-torn.jsonl")
    assert not trace.finished()
    trace.emit(TraceKind.RUN_STARTED, "start")
    trace.emit(TraceKind.RUN_STARTED, "resume", resumed=True)  # resumed mid-run: still open
    assert not trace.finished()
    trace.emit(TraceKind.RUN_FINISHED, "record", status="failed")
    assert trace.finished()
    trace.emit(TraceKind.RUN_STARTED, "resume", resumed=True)  # the kill came after the event
    assert trace.finished()
    trace.emit(TraceKind.RUN_STARTED, "message", message="faster, please")  # the next session round
    assert not trace.finished()
