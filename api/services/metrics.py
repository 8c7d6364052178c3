"""Prometheus metrics of the service, in a registry per app (several apps may live in one test process).

Counters are fed from the trace events every run emits (tokens, cost, verdict classes); gauges that
describe the present (jobs by status, queue depth, runs inside the verifier) are refreshed at scrape time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kernelwright.domain import TraceEvent, TraceKind

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._in_verifier: set[str] = set()
        r = self.registry
        self.jobs = Gauge("kernelwright_jobs", "Jobs by status", ["status"], registry=r)
        self.sessions = Gauge("kernelwright_sessions", "Sessions by status", ["status"], registry=r)
        self.queue_depth = Gauge("kernelwright_queue_depth", "Runs waiting for a run slot", registry=r)
        self.running = Gauge("kernelwright_runs_running", "Runs holding a run slot", registry=r)
        self.gpu_leases = Gauge(
            "kernelwright_gpu_leases", "Runs inside the verifier now (each holds the device)", registry=r
        )
        self.tokens = Counter(
            "kernelwright_llm_tokens", "LLM tokens", ["provider", "model", "direction"], registry=r
        )
        self.cost = Counter("kernelwright_llm_cost_usd", "LLM cost in USD", ["provider", "model"], registry=r)
        self.verdicts = Counter("kernelwright_verdicts", "Verdicts by outcome class", ["outcome"], registry=r)
        self.requests = Histogram(
            "kernelwright_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=r,
        )

    def observe_event(self, event: TraceEvent) -> None:
        data = event.data
        if event.kind == TraceKind.REPLY:
            provider, model = str(data.get("provider", "")), str(data.get("model", ""))
            self.tokens.labels(provider, model, "input").inc(int(data.get("input_tokens") or 0))
            self.tokens.labels(provider, model, "output").inc(int(data.get("output_tokens") or 0))
            self.cost.labels(provider, model).inc(float(data.get("cost_usd") or 0.0))
        elif event.kind == TraceKind.COMPILED and data.get("ok"):
            self._in_verifier.add(event.run_id)  # a compiled kernel goes to the verifier next
        elif event.kind == TraceKind.VERDICT:
            self._in_verifier.discard(event.run_id)
            self.verdicts.labels(str(data.get("outcome", "unknown"))).inc()
        elif event.kind == TraceKind.RUN_FINISHED:
            self._in_verifier.discard(event.run_id)
        self.gpu_leases.set(len(self._in_verifier))

    def run_stopped(self, run_id: str) -> None:
        """A run ended without a verdict (cancelled, failed): it holds no verifier lease any more."""
        self._in_verifier.discard(run_id)
        self.gpu_leases.set(len(self._in_verifier))

    def render(self) -> bytes:
        return generate_latest(self.registry)
