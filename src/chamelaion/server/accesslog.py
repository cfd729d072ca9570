"""Structured logs: one JSON object per line on stderr, for the access log and our loggers.

Only the method, the path (never the query string: output URLs carry signatures), the status,
the duration, the client address and the caller's key *id* are written. Headers are never
logged, so neither `x-api-key` nor `Authorization` can end up in a log file.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _utc_stamp(moment: float) -> str:
    whole = int(moment)
    millis = int((moment - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


class JsonLineFormatter(logging.Formatter):
    """Log records as the same JSON lines as the access log."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": _utc_stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure_logging() -> None:
    """JSON lines on stderr for our loggers (idempotent)."""
    root = logging.getLogger("chamelaion")
    if any(isinstance(h.formatter, JsonLineFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


class AccessLogMiddleware:
    """Writes each line straight to the stream: going through `logging` (records, handler
    locks, formatters) cost more than a fifth of a cheap request's time."""

    def __init__(self, app: ASGIApp, stream: TextIO | None = None) -> None:
        self.app = app
        self.stream = stream or sys.stderr

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app dies before answering, the server sends a 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            client = scope.get("client")
            state = scope.get("state") or {}
            entry = {
                "ts": _utc_stamp(time.time()),
                "level": "info",
                "logger": "chamelaion.access",
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client": client[0] if client else None,
                "key_id": state.get("api_key_id"),
            }
            self.stream.write(json.dumps(entry, separators=(",", ":")) + "\n")
