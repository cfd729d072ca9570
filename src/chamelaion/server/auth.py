"""Who is calling: API key from `x-api-key` or `Authorization: Bearer`, then quota and rate limit.

The checks run in the order the contract fixes, before anything looks at the request body:
header present → well formed → non-empty → known → not revoked → (generate only) quota left →
under the rate limit. A create with an `Idempotency-Key` skips the early quota check: it may be
the retry of a create that used the last of the quota, which must get its first response back
(`_create_job` still refuses a new job with 402 when no quota is left).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.idempotency import HEADER as IDEMPOTENCY_HEADER
from chamelaion.server.keys import find_key
from chamelaion.server.state import app_state


@dataclass(frozen=True)
class Caller:
    key_id: str
    account_id: str


def presented_key(request: Request) -> str:
    """The key string from the headers, or the contract's 401 for each way it can be wrong."""
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        token = api_key.strip()
    else:
        authorization = request.headers.get("authorization")
        if authorization is None:
            raise ApiError(401, errors.MISSING_AUTH)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, errors.BAD_AUTH_FORMAT)
        token = token.strip()
    if not token:
        raise ApiError(401, errors.MISSING_TOKEN)
    return token


async def _authenticate(request: Request, kind: str) -> Caller:
    token = presented_key(request)
    state = app_state(request)
    record = await state.read(find_key, token)
    if record is None:
        raise ApiError(401, errors.INVALID_TOKEN)
    if record.revoked:
        raise ApiError(401, errors.REVOKED)
    if (
        kind == "generate"
        and record.max_requests is not None
        and record.requests_used >= record.max_requests
        and IDEMPOTENCY_HEADER not in request.headers
    ):
        raise ApiError(402, errors.TOKEN_LIMIT)
    override = record.rate_limit_generate if kind == "generate" else record.rate_limit_read
    await state.rate_limiter.check(kind, record.id, override)
    request.state.api_key_id = record.id  # for the access log: the key's id, never the key
    return Caller(key_id=record.id, account_id=record.account_id)


def caller_for(kind: str) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency authenticating for an endpoint class ("generate" or "read")."""

    async def dependency(request: Request) -> Caller:
        return await _authenticate(request, kind)

    return dependency


generate_caller = caller_for("generate")
read_caller = caller_for("read")
