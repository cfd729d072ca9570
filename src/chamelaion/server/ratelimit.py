"""Per-key rate limits with the `limits` library, in its asyncio flavour.

The async storages run on the event loop: the in-memory one expires counters with an asyncio
task, where the threaded one starts a timer thread every few milliseconds under load (and each
start waits for the OS to schedule it, a visible tail-latency cost); the Redis one does not
block the loop while it waits for Redis.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio import strategies
from limits.storage import storage_from_string

from chamelaion.server.errors import RATE_LIMITED, ApiError


@lru_cache(maxsize=256)
def parse_limit(text: str) -> RateLimitItem:
    """`"60/minute"` → a limit item; raises ValueError on nonsense (checked at key creation)."""
    return parse(text)


def async_storage_uri(uri: str) -> str:
    """`memory://` → `async+memory://`, `redis://…` → `async+redis://…` (already async: kept)."""
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    """Sliding-window counters keyed by (endpoint class, API key id)."""

    def __init__(
        self,
        storage_uri: str,
        generate_default: str,
        read_default: str,
        key_prefix: str = "LIMITS",
    ) -> None:
        uri = async_storage_uri(storage_uri)
        # limits' async Redis storage defaults to coredis; redis-py is what this project ships.
        # The prefix lets several deployments (or test runs) share one Redis.
        options = (
            {"implementation": "redispy", "key_prefix": key_prefix}
            if uri.startswith("async+redis")
            else {}
        )
        self._limiter = strategies.SlidingWindowCounterRateLimiter(
            storage_from_string(uri, **options)
        )
        self._defaults = {
            "generate": parse_limit(generate_default),
            "read": parse_limit(read_default),
        }

    async def check(self, kind: str, key_id: str, override: str | None) -> None:
        """Count one hit; raise 429 with Retry-After when the key is over its limit."""
        item = parse_limit(override) if override else self._defaults[kind]
        if await self._limiter.hit(item, kind, key_id):
            return
        reset_time, _remaining = await self._limiter.get_window_stats(item, kind, key_id)
        retry_after = max(1, math.ceil(reset_time - time.time()))
        raise ApiError(429, RATE_LIMITED, {"Retry-After": str(retry_after)})
