from __future__ import annotations

from datetime import datetime
from typing import Literal

from .._models import BaseModel
from .lipsync_generate_params import SpeakerPoint

__all__ = ["FINISHED_STATUSES", "LipsyncRequest", "OutputSync", "RequestStage", "RequestStatus"]

RequestStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
"""A request moves ``queued`` → ``processing`` → ``completed`` | ``failed``; ``cancelled`` is
where ``requests.cancel()`` (or ``delete()``) takes a queued or processing one."""

RequestStage = Literal["fetching", "analysing", "rendering", "scoring"]
"""What a ``processing`` request's worker is doing (``LipsyncRequest.stage``)."""

FINISHED_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class OutputSync(BaseModel):
    """The output's lip sync, measured by the service after rendering (as ``chamelaion eval``)."""

    offset_frames: int
    """The shift that best aligns the output's sound and picture, in frames; positive when the
    sound comes after the mouth movement that makes it. Within ±1 is in sync."""

    confidence: float
    """How clearly that offset stands out: about 0.1 for real speakers with their own speech,
    under 0.03 for someone else's speech; 0 when nothing could be scored (no face, no speech)."""


class LipsyncRequest(BaseModel):
    """A lip sync request (job) and its state."""

    id: str
    """Lip sync request ID (a UUID)."""

    created_at: datetime
    """Request creation time (UTC, timezone-aware)."""

    status: str
    """One of ``queued``, ``processing``, ``completed``, ``failed``, ``cancelled`` (see
    ``RequestStatus``)."""

    error_message: str | None = None
    """Failure message when status is ``failed``."""

    finished_at: datetime | None = None
    """Processing completion time (UTC)."""

    output_url: str | None = None
    """A signed, expiring URL of the output MP4 once ``completed``; see ``requests.download``."""

    reference_id: str | None = None
    """Client-provided identifier of this request."""

    speaker: SpeakerPoint | None = None
    """The speaker point the request was made with, if any."""

    started_at: datetime | None = None
    """Processing start time (UTC)."""

    sync: OutputSync | None = None
    """The output's lip sync once ``completed`` (absent if it could not be measured)."""

    progress: float | None = None
    """While ``processing``: the share of the work done, 0 to 1."""

    stage: str | None = None
    """While ``processing``: ``fetching``, ``analysing``, ``rendering`` or ``scoring`` (see
    ``RequestStage``)."""

    output_expired: bool | None = None
    """True once a completed request's output was deleted at the end of the server's retention
    time (it then has no ``output_url``)."""

    notes: list[str] | None = None
    """What to know about a ``completed`` output, if anything: e.g. that the transcript did not
    match the audio and was not used."""

    @property
    def is_finished(self) -> bool:
        """Whether the request reached ``completed``, ``failed`` or ``cancelled``."""
        return self.status in FINISHED_STATUSES
