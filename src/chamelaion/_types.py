"""Small shared types: the NOT_GIVEN sentinel, timeout and header aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import httpx

__all__ = ["NOT_GIVEN", "Headers", "NotGiven", "Timeout"]


class NotGiven:
    """Marks an argument that was not passed, where ``None`` has a meaning of its own.

    For ``timeout``, ``None`` means "no timeout", so "not given" needs its own value.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()

#: A number of seconds for every phase, an ``httpx.Timeout`` for finer control, or ``None``.
Timeout = float | httpx.Timeout | None
Headers = Mapping[str, str]
