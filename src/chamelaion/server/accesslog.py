"""Structured access log: one JSON object per request on the `chamelaion.access` logger.

Only the method, the path (never the query string: output URLs carry signatures), the status,
the duration, the client address and the caller's key *id* are written. Headers are never
logged, so neither `x-api-key` nor `Authorization` can end up in a log file.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("chamelaion.access")


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = getattr(record, "entry", None)
        if entry is None:
            entry = {"message": record.getMessage()}
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
        stamp = datetime.fromtimestamp(record.created, timezone.utc)
        line = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            **entry,
        }
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
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            access_log.info(
                "request",
                extra={
                    "entry": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": client[0] if client else None,
                        "key_id": state.get("api_key_id"),
                    }
                },
            )
