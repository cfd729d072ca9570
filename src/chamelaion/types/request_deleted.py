from __future__ import annotations

from typing import Literal

from .._models import BaseModel

__all__ = ["RequestDeleted"]


class RequestDeleted(BaseModel):
    """What ``requests.delete()`` returns: the request, its inputs and output are gone."""

    id: str
    """The deleted request's ID."""

    deleted: Literal[True]
