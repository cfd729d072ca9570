"""OpenAPI descriptions of the errors each kind of endpoint can return."""

from __future__ import annotations

from typing import Any

from chamelaion.server.schemas import ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad input: `invalid request body` and the other documented 400 messages "
        "(see the README's error list).",
        401: "`missing authorization header`, `invalid authorization format`, `missing token`, "
        "`invalid token` or `unauthorized` (revoked key).",
        402: "`token limit reached`: the key's request quota is used up.",
        403: "`invalid signature` or `link expired`.",
        404: "`not found`.",
        409: "`idempotency key already used with a different request`.",
        413: "`file too large` (an upload) or `request body too large` (JSON over 1 MiB).",
        415: "Wrong content type for this endpoint.",
        416: "`range not satisfiable`.",
        429: "`rate limit exceeded`; see the Retry-After header.",
        500: "`internal error`.",
        507: "`insufficient storage`: the server's disk is below its free-space floor.",
    }
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        responses[status] = {"model": ErrorBody, "description": descriptions[status]}
        if status == 429:
            responses[status]["headers"] = {
                "Retry-After": {
                    "description": "Seconds until a request will be accepted again.",
                    "schema": {"type": "integer"},
                }
            }
    return responses


AUTHENTICATED = (401, 429, 500)
