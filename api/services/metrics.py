"""Prometheus metrics of the service, in a registry per app (several apps may live in one test process).

Counters are fed from the trace events every run emits (tokens, cost, verdict classes); gauges that
describe the present (jobs by status, queue depth, the runner's leased and healthy slots, its pool
events) are refreshed at scrape time.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from kernelwright.domain import TraceEvent, TraceKind
from sandbox.runner import Runner

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Gauge("kernelwright_jobs", "Jobs by status", ["status"], registry=r)
        self.sessions = Gauge("kernelwright_sessions", "Sessions by status", ["status"], registry=r)
        self.queue_depth = Gauge("kernelwright_queue_depth", "Runs waiting for a run slot", registry=r)
        self.running = Gauge("kernelwright_runs_running", "Runs holding a run slot", registry=r)
        self.gpu_leases = Gauge(
            "kernelwright_gpu_leases", "Runner slots (GPUs) evaluating a candidate now", registry=r
        )
        self.slots = Gauge("kernelwright_runner_slots", "Runner slots (GPUs) still healthy", registry=r)
        self.pool_events = Gauge(
            "kernelwright_runner_events",
            "Runner pool events so far (restarts, retries...)",
            ["kind"],
            registry=r,
        )
        self.tokens = PromCounter(
            "kernelwright_llm_tokens", "LLM tokens", ["provider", "model", "direction"], registry=r
        )
        self.cost = PromCounter(
            "kernelwright_llm_cost_usd", "LLM cost in USD", ["provider", "model"], registry=r
        )
        self.verdicts = PromCounter(
            "kernelwright_verdicts", "Verdicts by outcome class", ["outcome"], registry=r
        )
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
        elif event.kind == TraceKind.VERDICT:
            self.verdicts.labels(str(data.get("outcome", "unknown"))).inc()

    def observe_runner(self, runner: Runner) -> None:
        """The runner's present: slots busy and healthy, and its pool events counted by kind."""
        self.gpu_leases.set(runner.busy)
        self.slots.set(runner.healthy_slots)
        for kind, count in Counter(e.kind for e in runner.events).items():
            self.pool_events.labels(kind).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
