"""Turn a stored job into the contract's request object."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request

from chamelaion.server.models import JobStatus, LipsyncJob
from chamelaion.server.schemas import utc_text
from chamelaion.server.storage import OutputSigner

if TYPE_CHECKING:  # the state imports the queue, whose webhooks import this module
    from chamelaion.server.state import AppState


def public_base_url(request: Request, state: AppState) -> str:
    """The base of output URLs: the configured public base URL; else the one the client used
    to reach us, if its Host names a trusted host (`Settings.trusted_hosts`); else none, and
    output URLs are relative (`/api/v1/files/...`, resolved against the URL the client used).

    The Host header is the client's to choose: a link built from any Host would let whoever
    can put a request in front of a user (a cache, a proxy that forwards Host) point that
    user's download at a host of their choosing."""
    if state.settings.public_base_url:
        return state.settings.public_base_url
    if (request.url.hostname or "").lower() in state.settings.trusted_hosts:
        return str(request.base_url)
    return ""


class JobView(Protocol):
    """The columns a request object is made of: an ORM job or a Core row of PUBLIC_COLUMNS."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def reference_id(self) -> str | None: ...
    @property
    def sync_offset_frames(self) -> int | None: ...
    @property
    def sync_confidence(self) -> float | None: ...
    @property
    def notes(self) -> str | None: ...
    @property
    def output_expired_at(self) -> datetime | None: ...
    @property
    def progress(self) -> float: ...
    @property
    def progress_stage(self) -> str | None: ...
    @property
    def speaker_frame(self) -> int | None: ...
    @property
    def speaker_x(self) -> float | None: ...
    @property
    def speaker_y(self) -> float | None: ...


PUBLIC_COLUMNS = (
    LipsyncJob.id,
    LipsyncJob.status,
    LipsyncJob.created_at,
    LipsyncJob.started_at,
    LipsyncJob.finished_at,
    LipsyncJob.error_message,
    LipsyncJob.reference_id,
    LipsyncJob.sync_offset_frames,
    LipsyncJob.sync_confidence,
    LipsyncJob.notes,
    LipsyncJob.progress,
    LipsyncJob.progress_stage,
    LipsyncJob.output_expired_at,
    LipsyncJob.speaker_frame,
    LipsyncJob.speaker_x,
    LipsyncJob.speaker_y,
)


_COMPLETED, _FAILED = JobStatus.COMPLETED.value, JobStatus.FAILED.value
_PROCESSING = JobStatus.PROCESSING.value


def present_job(job: JobView, base_url: str, signer: OutputSigner) -> dict[str, Any]:
    """The request object with absent fields omitted (never null), times as ...Z. The API's
    reads and the webhooks both send it, so a webhook body is exactly what a GET returns."""
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "created_at": utc_text(job.created_at),
    }
    if job.reference_id is not None:
        body["reference_id"] = job.reference_id
    if job.speaker_frame is not None:
        body["speaker"] = {"frame": job.speaker_frame, "x": job.speaker_x, "y": job.speaker_y}
    if job.started_at is not None:
        body["started_at"] = utc_text(job.started_at)
    if job.finished_at is not None:
        body["finished_at"] = utc_text(job.finished_at)
    if job.status == _COMPLETED:
        if job.output_expired_at is None:
            body["output_url"] = signer.url(base_url, job.id)
        else:
            body["output_expired"] = True
        if job.sync_offset_frames is not None and job.sync_confidence is not None:
            body["sync"] = {
                "offset_frames": job.sync_offset_frames,
                "confidence": job.sync_confidence,
            }
        if job.notes:
            body["notes"] = job.notes.split("\n")
    if job.status == _PROCESSING:
        body["progress"] = round(job.progress, 3)
        if job.progress_stage is not None:
            body["stage"] = job.progress_stage
    if job.status == _FAILED and job.error_message:
        body["error_message"] = job.error_message
    return body
