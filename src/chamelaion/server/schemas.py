"""Request and response shapes of the contract, as pydantic models.

The models document the API (they generate /openapi.json) and validate structure. The checks
whose failures have their own contract message (input types, counts, model) run after
structural validation, in `validate_generate`, so each mistake gets its own clear error.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chamelaion.server import errors
from chamelaion.server.errors import ApiError

MODELS = ("lipsync-2",)
# The engine's SyncMode values. Repeated here so the API process never imports the engine;
# a test keeps the two in step.
SYNC_MODES = ("cut_off", "loop", "bounce", "silence", "remap")
MAX_REFERENCE_ID = 256
MAX_URL = 4096

ReferenceId = Annotated[str, Field(min_length=1, max_length=MAX_REFERENCE_ID)]


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, as a fixed, documented string.")


class GenerateInput(BaseModel):
    model_config = ConfigDict(strict=True)

    type: str = Field(
        description='Type of input media: "video" or "audio".',
        json_schema_extra={"enum": ["video", "audio"]},
    )
    url: str = Field(
        description="Absolute http(s) URL of the media resource.",
        json_schema_extra={"format": "uri"},
        max_length=MAX_URL,
    )


class GenerateBody(BaseModel):
    model_config = ConfigDict(strict=True)

    inputs: list[GenerateInput] = Field(
        description="Exactly one video input and one audio input (order does not matter)."
    )
    disable_active_speaker_detection: bool = Field(
        False, description="Disable active speaker detection and use the largest face."
    )
    reference_id: ReferenceId | None = Field(
        None, description="Optional client-provided identifier for later retrieval."
    )
    model: str = Field(
        "lipsync-2",
        description='Model selector; only "lipsync-2".',
        json_schema_extra={"enum": list(MODELS)},
    )
    sync_mode: Literal["cut_off", "loop", "bounce", "silence", "remap"] = Field(
        "cut_off", description="How to reconcile a video and an audio of different lengths."
    )


class LipsyncGenerate(BaseModel):
    # No default: the field is always sent, so the document marks it required (as the seed does).
    status: Literal["success"] = Field(description="Current state of the newly created request.")
    request_id: str = Field(
        description="Identifier of the created lip sync request.",
        json_schema_extra={"format": "uuid"},
    )


def _optional(description: str, string_format: str | None = None) -> Any:
    """A field the server leaves out (rather than sending null) until it applies."""

    def document(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        if string_format:
            schema["format"] = string_format

    return Field(None, description=description, json_schema_extra=document)


class OutputSync(BaseModel):
    """The output's lip sync, measured after rendering as `chamelaion eval` does."""

    offset_frames: int = Field(
        description="The shift that best aligns the output's sound and picture, in frames: "
        "positive when the sound comes after the mouth movement that makes it (|offset| <= 1 "
        "is in sync); searched over +-15 frames."
    )
    confidence: float = Field(
        description="How clearly that offset stands out (median distance over offsets minus "
        "the smallest, as SyncNet's confidence): about 0.1 for real speakers with their own "
        "speech, under 0.03 for someone else's; 0 when nothing could be scored (no face, no "
        "speech)."
    )


class LipsyncRequest(BaseModel):
    """A request as clients see it: fields that do not apply yet are absent, never null."""

    id: str = Field(description="Lip sync request ID.", json_schema_extra={"format": "uuid"})
    status: Literal["queued", "processing", "completed", "failed"]
    created_at: str = Field(
        description="Creation time in UTC, e.g. 2026-04-07T10:00:00Z.",
        json_schema_extra={"format": "date-time"},
    )
    started_at: str = _optional("Processing start time in UTC.", "date-time")
    finished_at: str = _optional("Processing completion time in UTC.", "date-time")
    output_url: str = _optional("Signed, expiring URL of the output MP4 (when completed).", "uri")
    error_message: str = _optional("Why the request failed (when failed).")
    reference_id: str = _optional("Client-provided identifier.")
    sync: OutputSync = _optional("The output's lip sync (when completed and measured).")


class Pagination(BaseModel):
    limit: int
    offset: int
    total: int


class RequestListResponse(BaseModel):
    data: list[LipsyncRequest]
    pagination: Pagination


class Health(BaseModel):
    status: Literal["ok"] = "ok"


def utc_text(moment: datetime) -> str:
    """`2026-04-07T10:00:00Z`. Runs for every time of every listed request, hence isoformat
    (several times faster than strftime) cut after the seconds, rather than anything clearer."""
    if moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def is_http_url(text: str) -> bool:
    """Absolute http(s) URL with a host and no whitespace (which would corrupt the request)."""
    if any(ch.isspace() for ch in text) or len(text) > MAX_URL:
        return False
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_model(model: str) -> None:
    if model not in MODELS:
        raise ApiError(400, errors.UNSUPPORTED_MODEL)


def validate_generate(payload: Any) -> tuple[GenerateBody, str, str]:
    """The body as a model plus (video URL, audio URL), or the contract's 400 for the mistake."""
    try:
        body = GenerateBody.model_validate(payload)
    except ValidationError as exc:
        raise ApiError(400, errors.INVALID_BODY) from exc
    if any(item.type not in ("video", "audio") for item in body.inputs):
        raise ApiError(400, errors.BAD_INPUT_TYPE)
    videos = [item.url for item in body.inputs if item.type == "video"]
    audios = [item.url for item in body.inputs if item.type == "audio"]
    if len(videos) != 1:
        raise ApiError(400, errors.ONE_VIDEO)
    if len(audios) != 1:
        raise ApiError(400, errors.ONE_AUDIO)
    if not (is_http_url(videos[0]) and is_http_url(audios[0])):
        raise ApiError(400, errors.INVALID_BODY)
    check_model(body.model)
    return body, videos[0], audios[0]
