from __future__ import annotations

from .._models import BaseModel

__all__ = ["LipsyncGenerate"]


class LipsyncGenerate(BaseModel):
    """The answer to ``generate``/``generate_with_media``: the new request's id."""

    request_id: str
    """Identifier of the created lip sync request (a UUID)."""

    status: str
    """``"success"``: the request was accepted. Poll ``requests.retrieve(request_id)``."""
