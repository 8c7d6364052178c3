"""Live display of a run's steps on the terminal (a trace listener)."""

from __future__ import annotations

from rich.console import Console

from kernelwright.domain import TraceEvent, TraceKind

__all__ = ["ProgressPrinter"]

_STYLE = {"correct": "bold green", "compile_error": "yellow", "no_gpu": "cyan", "toolchain_missing": "red"}


class ProgressPrinter:
    """Prints one line per step as events arrive: what was retrieved, asked, compiled and judged."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: TraceEvent) -> None:
        data, turn = event.data, f"[dim]turn {event.turn}[/]"
        match event.kind:
            case TraceKind.RUN_STARTED:
                replay = (
                    " [magenta](replay of a recorded transcript: no model is called)[/]"
                    if event.replay
                    else ""
                )
                what = "resuming" if data.get("resumed") else f"{data.get('problem')} → {data.get('target')}"
                self.console.print(
                    f"[bold]run[/] {event.run_id}: {what} with "
                    f"{data.get('provider')}/{data.get('model')}{replay}"
                )
            case TraceKind.RETRIEVED:
                cites = ", ".join(h["citation"] for h in data.get("hits", [])[:3])
                self.console.print(f"{turn} retrieve  {len(data.get('hits', []))} hits  [dim]{cites}[/]")
            case TraceKind.PROMPT:
                self.console.print(f"{turn} propose   step={data.get('step')} ({data.get('template')})")
            case TraceKind.REPLY:
                cost = data.get("cost_usd")
                money = f", ${cost:.4f}" if isinstance(cost, float) else ""
                self.console.print(
                    f"{turn} reply     {data.get('input_tokens')}+{data.get('output_tokens')} tokens"
                    f"{money}, finish={data.get('finish_reason')}"
                )
            case TraceKind.DIAGNOSTICS:
                for diag in data.get("diagnostics", [])[:3]:
                    self.console.print(f"{turn} check     [yellow]{diag['code']}[/]: {diag['message']}")
            case TraceKind.COMPILED:
                status = "[green]ok[/]" if data.get("ok") else "[red]failed[/]"
                self.console.print(
                    f"{turn} compile   {data.get('toolchain')}: {status}"
                    f" ({(event.duration_s or 0) * 1000:.0f} ms)"
                )
                for diag in data.get("diagnostics", [])[:3]:
                    self.console.print(
                        f"             [yellow]{diag['code']}[/] line {diag.get('line')}: {diag['message']}"
                    )
            case TraceKind.VERDICT:
                outcome = str(data.get("outcome"))
                speed, versus_compile = data.get("speedup_vs_eager"), data.get("speedup_vs_compile")
                extra = f", {speed:.2f}x vs eager" if isinstance(speed, float) else ""
                extra += (
                    f", {versus_compile:.2f}x vs torch.compile" if isinstance(versus_compile, float) else ""
                )
                extra += " (from the result store)" if data.get("from_store") else ""
                first = str(data.get("message", "")).splitlines()[:1]
                self.console.print(
                    f"{turn} verify    [{_STYLE.get(outcome, 'red')}]{outcome}[/]{extra} "
                    f"[dim]{first[0] if first else ''} ({event.duration_s or 0:.1f} s)[/]"
                )
            case TraceKind.RUN_FINISHED:
                self.console.print(
                    f"[bold]done[/]: {data.get('status')} — {data.get('reason')} "
                    f"[dim]({data.get('turns')} turns, {data.get('tokens_used')} tokens)[/]"
                )
            case TraceKind.ERROR:
                self.console.print(f"{turn} [red]error[/] {data.get('error')}")
            case _:
                pass
