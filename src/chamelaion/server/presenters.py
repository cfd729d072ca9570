"""Turn a stored job into the contract's request object."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from chamelaion.server.models import JobStatus, LipsyncJob
from chamelaion.server.schemas import utc_text
from chamelaion.server.state import AppState


def public_base_url(request: Request, state: AppState) -> str:
    """The configured public base URL, else the one the client used to reach us."""
    return state.settings.public_base_url or str(request.base_url)


def present_job(job: LipsyncJob, base_url: str, state: AppState) -> dict[str, Any]:
    """The request object with absent fields omitted (never null), times as ...Z."""
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "created_at": utc_text(job.created_at),
    }
    if job.reference_id is not None:
        body["reference_id"] = job.reference_id
    if job.started_at is not None:
        body["started_at"] = utc_text(job.started_at)
    if job.finished_at is not None:
        body["finished_at"] = utc_text(job.finished_at)
    if job.status == JobStatus.COMPLETED.value:
        body["output_url"] = state.signer.url(base_url, job.id)
    if job.status == JobStatus.FAILED.value and job.error_message:
        body["error_message"] = job.error_message
    return body
