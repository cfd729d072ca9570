from __future__ import annotations

from typing import TypedDict

__all__ = ["RequestListParams"]


class RequestListParams(TypedDict, total=False):
    limit: int
    """Maximum number of items per page (server default 20, max 100)."""

    offset: int
    """Number of items to skip."""

    reference_id: str
    """Only requests with exactly this ``reference_id``."""
