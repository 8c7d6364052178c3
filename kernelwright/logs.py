"""Structured logging (structlog over the standard library). Configured once, by the entry point only."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

__all__ = ["configure_logging", "get_logger"]


class _StderrLogger:
    """Writes each line to the `sys.stderr` of the moment: test runners (and Ray) swap the stream, and a
    logger holding the stream of configuration time would write to a closed file later."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(level: str = "INFO", fmt: Literal["console", "json"] = "console") -> None:
    """Set up structlog for a process. Call from `main()`-style entry points, never from library code."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A bound logger named after its module."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
