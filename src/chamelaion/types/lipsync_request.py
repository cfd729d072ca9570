from __future__ import annotations

from datetime import datetime
from typing import Literal

from .._models import BaseModel

__all__ = ["FINISHED_STATUSES", "LipsyncRequest", "RequestStatus"]

RequestStatus = Literal["queued", "processing", "completed", "failed"]
"""A request moves ``queued`` → ``processing`` → ``completed`` | ``failed``."""

FINISHED_STATUSES: frozenset[str] = frozenset({"completed", "failed"})


class LipsyncRequest(BaseModel):
    """A lip sync request (job) and its state."""

    id: str
    """Lip sync request ID (a UUID)."""

    created_at: datetime
    """Request creation time (UTC, timezone-aware)."""

    status: str
    """One of ``queued``, ``processing``, ``completed``, ``failed`` (see ``RequestStatus``)."""

    error_message: str | None = None
    """Failure message when status is ``failed``."""

    finished_at: datetime | None = None
    """Processing completion time (UTC)."""

    output_url: str | None = None
    """A signed, expiring URL of the output MP4 once ``completed``; see ``requests.download``."""

    reference_id: str | None = None
    """Client-provided identifier of this request."""

    started_at: datetime | None = None
    """Processing start time (UTC)."""

    @property
    def is_finished(self) -> bool:
        """Whether the request reached ``completed`` or ``failed``."""
        return self.status in FINISHED_STATUSES
