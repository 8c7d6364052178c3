"""The line protocol between the service and a worker process (standard library only).

Each message is one JSON object on one line. A worker keeps its protocol stream on a private
duplicate of the original stdout and points fd 1 at stderr, so whatever candidate code prints
cannot be mistaken for a message.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

__all__ = ["Channel"]


class Channel:
    """A worker's end of the protocol: reads commands from stdin, writes messages to the saved stdout."""

    def __init__(self, out: TextIO, inp: TextIO) -> None:
        self._out = out
        self._in = inp

    @classmethod
    def take_over_stdio(cls) -> Channel:
        """Keep the real stdout for messages and send fd 1 (and `sys.stdout`) to stderr."""
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return cls(os.fdopen(saved, "w", buffering=1, encoding="utf-8"), sys.stdin)

    def send(self, **message: Any) -> None:
        self._out.write(json.dumps(message, default=str) + "\n")
        self._out.flush()

    def receive(self) -> dict[str, Any]:
        line = self._in.readline()
        if not line:
            raise EOFError("the service closed the worker's input")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a protocol message must be a JSON object")
        return message
