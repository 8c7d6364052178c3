"""A real kernelwright server in a subprocess (`kernelwright serve`), for the acceptance tests over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def transcript_replies(name: str) -> list[str]:
    data = json.loads((EXAMPLES / "transcripts" / name).read_text())
    return [r["text"] for r in data["replies"]]


def problem_source(name: str) -> str:
    return (EXAMPLES / "problems" / name).read_text()


class Server:
    """`kernelwright serve` on a free port with its state under `home`; start, stop (gracefully or not)."""

    def __init__(self, home: Path, *, database_url: str | None = None, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "KERNELWRIGHT_HOME": str(home),
            "KERNELWRIGHT_CORRECTNESS_DRAWS": "2",
            "KERNELWRIGHT_TIMING_TRIALS": "5",
            "KERNELWRIGHT_TIMING_WARMUP": "1",
            "KERNELWRIGHT_LOG_FORMAT": "json",
            **({"KERNELWRIGHT_DATABASE_URL": database_url} if database_url else {}),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(self.port)],
            cwd=self.home.parent,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log()}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api", *args],
            cwd=self.home.parent,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def create_key(self, name: str = "tests", *extra: str) -> str:
        out = self.cli("keys", "create", name, "--format", "json", *extra).stdout
        token: str = json.loads(out)["token"]
        return token


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(client: httpx.Client, path: str, done: Any, timeout: float = 120.0) -> dict[str, Any]:
    """Poll `path` until `done(body)`; the last body."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(path).json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting on {path}: {body}")
        time.sleep(0.2)


def sse_events(client: httpx.Client, path: str, last_event_id: int | None = None) -> Iterator[dict[str, Any]]:
    """Read a server-sent event stream to its end: dicts with id, event and data."""
    extra = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with client.stream("GET", path, headers=extra, timeout=180) as response:
        response.raise_for_status()
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if not line:
                if "event" in event:
                    yield event
                event = {}
            elif line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
