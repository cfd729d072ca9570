from __future__ import annotations

from .._models import BaseModel
from .lipsync_request import LipsyncRequest

__all__ = ["Pagination", "RequestListResponse"]


class Pagination(BaseModel):
    limit: int
    """Applied page size."""

    offset: int
    """Applied result offset."""

    total: int
    """Total number of matching records."""


class RequestListResponse(BaseModel):
    """One page of lip sync requests, oldest first."""

    data: list[LipsyncRequest]
    pagination: Pagination
