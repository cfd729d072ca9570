from __future__ import annotations

from .._models import BaseModel

__all__ = ["LipsyncEstimate"]


class LipsyncEstimate(BaseModel):
    """What ``lipsync.estimate()`` returns: what a job with those inputs would produce and
    cost. No job is started and no quota is used."""

    duration: float
    """Length of the output in seconds (after ``sync_mode``)."""

    frames: int
    """Frames the output will have."""

    fps: float
    """Output frames per second (the source video's rate)."""

    tokens: int
    """Requests of the key's quota the job will use (each job uses one)."""

    processing_seconds: float
    """Expected processing time once a worker starts it (time queued not included)."""
