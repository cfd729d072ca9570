"""Per-key rate limits with the `limits` library (memory here; `redis://...` when scaled out)."""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse, storage, strategies

from chamelaion.server.errors import RATE_LIMITED, ApiError


@lru_cache(maxsize=256)
def parse_limit(text: str) -> RateLimitItem:
    """`"60/minute"` → a limit item; raises ValueError on nonsense (checked at key creation)."""
    return parse(text)


class RateLimiter:
    """Sliding-window counters keyed by (endpoint class, API key id)."""

    def __init__(self, storage_uri: str, generate_default: str, read_default: str) -> None:
        self._limiter = strategies.SlidingWindowCounterRateLimiter(
            storage.storage_from_string(storage_uri)
        )
        self._defaults = {
            "generate": parse_limit(generate_default),
            "read": parse_limit(read_default),
        }

    def check(self, kind: str, key_id: str, override: str | None) -> None:
        """Count one hit; raise 429 with Retry-After when the key is over its limit."""
        item = parse_limit(override) if override else self._defaults[kind]
        if self._limiter.hit(item, kind, key_id):
            return
        reset_time, _remaining = self._limiter.get_window_stats(item, kind, key_id)
        retry_after = max(1, math.ceil(reset_time - time.time()))
        raise ApiError(429, RATE_LIMITED, {"Retry-After": str(retry_after)})
