"""Per-key rate limits with the `limits` library, in its asyncio flavour.

The async storages run on the event loop: the in-memory one expires counters with an asyncio
task, where the threaded one starts a timer thread every few milliseconds under load (and each
start waits for the OS to schedule it, a visible tail-latency cost); the Redis one does not
block the loop while it waits for Redis.

With Redis as the store (several API replicas sharing one count), an unreachable Redis does not
stop the API: each replica counts on its own in memory until Redis answers again (so during an
outage a key may get up to once its limit per replica), and says so in its log.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio import strategies
from limits.errors import StorageError
from limits.storage import storage_from_string

from chamelaion.server.errors import RATE_LIMITED, ApiError

log = logging.getLogger("chamelaion.ratelimit")
# Redis calls of the limiter give up after this long: a Redis that stopped answering (rather
# than refusing connections) falls back to local counting instead of stalling every request.
REDIS_TIMEOUT_SECONDS = 2.0


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
        shared = uri.startswith("async+redis")
        # limits' async Redis storage defaults to coredis; redis-py is what this project ships.
        # The prefix lets several deployments (or test runs) share one Redis.
        options: dict[str, str | float | bool] = (
            {
                "implementation": "redispy",
                "key_prefix": key_prefix,
                "wrap_exceptions": True,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
            }
            if shared
            else {}
        )
        self._limiter = strategies.SlidingWindowCounterRateLimiter(
            storage_from_string(uri, **options)
        )
        # Where hits are counted while the shared store is unreachable.
        self._local = (
            strategies.SlidingWindowCounterRateLimiter(storage_from_string("async+memory://"))
            if shared
            else None
        )
        self._degraded = False
        self._defaults = {
            "generate": parse_limit(generate_default),
            "read": parse_limit(read_default),
        }

    async def check(self, kind: str, key_id: str, override: str | None) -> None:
        """Count one hit; raise 429 with Retry-After when the key is over its limit."""
        item = parse_limit(override) if override else self._defaults[kind]
        limiter = self._limiter
        try:
            allowed = await limiter.hit(item, kind, key_id)
            if self._degraded:
                self._degraded = False
                log.warning("rate limit store reachable again: counting in it again")
        except StorageError as exc:
            if self._local is None:
                raise
            if not self._degraded:
                self._degraded = True
                log.warning("rate limit store unreachable (%s): counting locally", exc)
            limiter = self._local
            allowed = await limiter.hit(item, kind, key_id)
        if allowed:
            return
        try:
            reset_time, _remaining = await limiter.get_window_stats(item, kind, key_id)
        except StorageError:  # gone between the two calls: a window is at most this long
            reset_time = time.time() + item.get_expiry()
        retry_after = max(1, math.ceil(reset_time - time.time()))
        raise ApiError(429, RATE_LIMITED, {"Retry-After": str(retry_after)})
