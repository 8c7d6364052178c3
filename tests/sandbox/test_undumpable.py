"""An undumpable process keeps its environment and memory from other processes of its own user: what
protects the service's API keys (and the reference's secrets) from workers that run as the same user
where no PID namespace hides the service."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
# an interpreter the unprivileged user may run (this one may live under root's home)
SYSTEM_PYTHON = next(
    (p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None
)

_HOLDER = """
import sys, time
if sys.argv[1] == "protect":
    from sandbox.runtime.limits import make_undumpable
    assert make_undumpable()
print("ready", flush=True)
time.sleep(60)
"""

_READER = """
import sys
for name in ("environ", "mem", "maps"):
    try:
        with open(f"/proc/{sys.argv[1]}/{name}", "rb") as source:
            source.read(1)
        print(name, "readable")
    except OSError as exc:
        print(name, exc.strerror)
"""


def _read_as_same_user(protect: bool) -> dict[str, str]:
    env = {"PYTHONPATH": str(REPO), "KWDECOYSECRET": "sk-not-for-workers", "PATH": os.environ["PATH"]}
    holder = subprocess.Popen(
        [str(SYSTEM_PYTHON), "-c", _HOLDER, "protect" if protect else "open"],
        env=env,
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        time.sleep(0.05)
        done = subprocess.run(
            [str(SYSTEM_PYTHON), "-c", _READER, str(holder.pid)],
            env={"PATH": os.environ["PATH"]},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            check=True,
        )
    finally:
        holder.kill()
        holder.wait()
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run both processes as one unprivileged user")
@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="needs a system python3 that any user may run")
def test_another_process_of_the_same_user_cannot_read_an_undumpable_one() -> None:
    assert _read_as_same_user(protect=False)["environ"] == "readable"  # what the protection changes
    seen = _read_as_same_user(protect=True)
    assert all(result != "readable" for result in seen.values()), seen
