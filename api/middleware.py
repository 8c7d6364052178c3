"""ASGI middleware: request body size limit (413) and structured request logs with metrics.

The size check reads `Content-Length` and also counts streamed bytes, so a chunked body cannot slip past.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.services.metrics import ServiceMetrics
from kernelwright.logs import get_logger

__all__ = ["BodyLimitMiddleware", "RequestLogMiddleware"]

log = get_logger("api.requests")


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps(
        {"detail": f"request body is larger than {limit} bytes (KERNELWRIGHT_MAX_REQUEST_BYTES); send less"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _reject(send, self.max_bytes)
                return
        seen = 0
        rejected = False

        async def counted_receive() -> Message:
            # Past the limit, answer 413 here and tell the app the client left: parsers catch exceptions
            # raised while reading the body and would turn them into a misleading 400.
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    await _reject(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, counted_receive, guarded_send)


class RequestLogMiddleware:
    """One log line per request (method, path, status, ms, key and job/session id) and a latency histogram."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500
        path: str = scope["path"]
        parts = path.strip("/").split("/")
        ids: dict[str, Any] = {}
        if len(parts) >= 2 and parts[0] == "jobs":
            ids["job_id"] = parts[1]
        elif len(parts) >= 2 and parts[0] == "sessions":
            ids["session_id"] = parts[1]

        async def tracked_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        with structlog.contextvars.bound_contextvars(**ids):
            try:
                await self.app(scope, receive, tracked_send)
            finally:
                elapsed = time.perf_counter() - started
                template = "/" + "/".join(["{id}" if i == 1 else p for i, p in enumerate(parts)])
                self.metrics.requests.labels(scope["method"], template, str(status_code)).observe(elapsed)
                state = scope.get("state") or {}
                log.info(
                    "request",
                    method=scope["method"],
                    path=path,
                    status=status_code,
                    ms=round(elapsed * 1000, 1),
                    key_id=state.get("key_id"),
                )
