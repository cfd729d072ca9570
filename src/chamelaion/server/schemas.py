"""Request and response shapes of the contract, as pydantic models, and the one validator of
the job options both generate routes take.

The models document the API (they generate /openapi.json) and validate structure: a JSON body
in strict JSON mode (`GenerateBody`, parsed straight from the bytes, nesting limited), the
upload's text fields in string mode (`JobOptions`, the same fields, so "true" is a boolean
there). The option values themselves (sync modes, model names) come from the engine's options
module. The checks whose failures have their own contract message (input types, counts,
model, reference_id) run after structural validation, so each mistake gets its own clear error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from chamelaion.engine.options import (
    DEFAULT_MODEL,
    DEFAULT_TRANSCRIPT_LANGUAGE,
    MAX_TRANSCRIPT_CHARS,
    MODELS,
    SyncMode,
)
from chamelaion.engine.transcript import LANGUAGE_TAG_PATTERN, is_language_tag
from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.fetch import MAX_URL, address_allowed, literal_address, normalized_url

MAX_REFERENCE_ID = 256
# A reference_id is a name, not a path: no control characters (C0, DEL, C1, line and paragraph
# separators), no "/", no whitespace at either end, and not "." or ".." (which URL clients
# resolve away: GET /lipsync/requests/.. would never reach it). Without lookarounds, so that
# every JSON-Schema tool (and the Rust regex engine pydantic uses) reads it the same way.
_REFERENCE_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029/]"
_REFERENCE_EDGE = r"[^\s\x00-\x1f\x7f-\x9f\u2028\u2029/]"
REFERENCE_ID_PATTERN = f"^{_REFERENCE_EDGE}(?:{_REFERENCE_CHAR}*{_REFERENCE_EDGE})?$"
_DOT_SEGMENTS = (".", "..")


def _not_a_dot_segment(value: str) -> str:
    if value in _DOT_SEGMENTS:
        raise ValueError("a reference_id cannot be . or ..")
    return value


ReferenceId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_REFERENCE_ID,
        pattern=REFERENCE_ID_PATTERN,
        json_schema_extra={"not": {"enum": list(_DOT_SEGMENTS)}},
    ),
    AfterValidator(_not_a_dot_segment),
]


MediaUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL,
        description="Absolute http(s) URL of the media resource.",
        json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"},
    ),
    AfterValidator(normalized_url),  # its ValueError becomes a validation error
]


WEBHOOK_URL_DESCRIPTION = (
    "Where to POST the request object, signed, once the job has finished (completed, failed "
    "or cancelled). Needs the account's webhook secret. Its address is checked by the same "
    "guard as media fetches: a literal address at once (400 `url not allowed`), a host name's "
    "when it is called."
)
WebhookUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL,
        description=WEBHOOK_URL_DESCRIPTION,
        json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"},
    ),
    AfterValidator(normalized_url),  # the same normal form as media URLs
]


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, as a fixed, documented string.")


class GenerateInput(BaseModel):
    model_config = ConfigDict(strict=True)

    type: str = Field(
        description='Type of input media: "video" or "audio".',
        json_schema_extra={"enum": ["video", "audio"]},
    )
    url: MediaUrl


def _whole_number(value: object) -> object:
    """JSON Schema's `integer` includes 2362.0 (a number with no fraction), so the API takes
    it as that integer; 2362.5 and "2362" are still refused by the strict check after this."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class SpeakerPoint(BaseModel):
    """`engine.options.SpeakerPoint` on the wire."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    # At most a 32-bit integer: what every database stores in an integer column, and far past
    # the last frame of any video the engine takes (30 minutes at any real frame rate).
    frame: Annotated[int, BeforeValidator(_whole_number)] = Field(
        ge=0, le=2**31 - 1, description="The source video's frame (0-based) the point is in."
    )
    x: float = Field(ge=0, le=1, description="From the left edge, as a fraction of the width.")
    y: float = Field(ge=0, le=1, description="From the top edge, as a fraction of the height.")


SPEAKER_DESCRIPTION = (
    "The person to re-animate, pointed at: a point on their face in one frame of the source "
    "video (the frame's index, 0-based, at the video's own frame rate; x and y as fractions of "
    "the picture's width and height from its top-left corner, as displayed). That face is "
    "followed through its shot, and the same person through other shots where they are "
    "recognised (the completed request's notes say where they were not: no face is "
    "re-animated there). Overrides active speaker detection and "
    "disable_active_speaker_detection. A frame past the video's end, or no face at or near "
    "the point in that frame, fails the request with an error_message saying so (an uploaded "
    "video's frame count is checked at once: 400 `speaker frame is beyond the video's last "
    "frame`). In a multipart upload, the field is this object as JSON text."
)


class JobOptions(BaseModel):
    """The options both generate routes take; one model validates them for both."""

    model_config = ConfigDict(strict=True)

    disable_active_speaker_detection: bool = Field(
        False, description="Disable active speaker detection and use the largest face."
    )
    reference_id: ReferenceId | None = Field(
        None,
        description="Optional client-provided identifier for later retrieval: 1-256 "
        'characters, no control characters, no "/", no spaces at either end, not "." or "..".',
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="Model selector.",
        json_schema_extra={"enum": list(MODELS)},
    )
    sync_mode: SyncMode = Field(
        SyncMode.CUT_OFF,
        description="How to reconcile a video and an audio of different lengths.",
    )
    webhook_url: WebhookUrl | None = Field(None, description=WEBHOOK_URL_DESCRIPTION)
    # The cap is checked in `_check_options`, for its own message; the schema states it.
    transcript: str | None = Field(
        None,
        description="What the new audio says, if known (a dub's script), at most "
        f"{MAX_TRANSCRIPT_CHARS} characters: its phones, aligned to the audio, make the mouth "
        "surer. A transcript that does not match the audio is not used, and the completed "
        "request's notes say so.",
        json_schema_extra={"maxLength": MAX_TRANSCRIPT_CHARS},
    )
    # The pattern is checked in `_check_options`, for its own message; the schema states it.
    speaker: SpeakerPoint | None = Field(None, description=SPEAKER_DESCRIPTION)
    transcript_language: str = Field(
        DEFAULT_TRANSCRIPT_LANGUAGE,
        description='The transcript\'s language as a BCP-47 tag ("en", "fr-FR", "pt-BR", '
        '"zh"). The workers read it with espeak-ng (about a hundred languages); with one it '
        "does not read, the transcript is not used and the completed request's notes say so.",
        json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
    )


def _one_of_each_kind(schema: dict[str, Any]) -> None:
    """Say in JSON Schema what `validate_generate` checks (with its own messages): two inputs,
    one of each type, in any order."""
    schema.update(minItems=2, maxItems=2)
    schema["allOf"] = [
        {"contains": {"properties": {"type": {"const": kind}}, "required": ["type"]}}
        for kind in ("video", "audio")
    ]


class GenerateBody(JobOptions):
    inputs: list[GenerateInput] = Field(
        description="Exactly one video input and one audio input (order does not matter).",
        json_schema_extra=_one_of_each_kind,
    )


class GenerateWithMediaForm(JobOptions):
    """The upload's form, for the OpenAPI document only: the upload reader streams the files
    to disk and `validate_upload_fields` takes the rest. Other fields are ignored but count
    against the reader's part caps, so the document asks for none."""

    model_config = ConfigDict(extra="forbid")

    video: bytes = Field(description="Source video file.")
    audio: bytes = Field(description="Target audio file.")


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
    status: Literal["queued", "processing", "completed", "failed", "cancelled"] = Field(
        description="queued -> processing -> completed | failed; cancelled (by the client) "
        "from queued or processing."
    )
    created_at: str = Field(
        description="Creation time in UTC, e.g. 2026-04-07T10:00:00Z.",
        json_schema_extra={"format": "date-time"},
    )
    started_at: str = _optional("Processing start time in UTC.", "date-time")
    finished_at: str = _optional("Processing completion time in UTC.", "date-time")
    output_url: str = _optional(
        "Signed, expiring URL of the output MP4 (when completed): absolute when the server "
        "knows its public address, else relative to the API's base URL.",
        "uri-reference",
    )
    error_message: str = _optional("Why the request failed (when failed).")
    reference_id: str = _optional("Client-provided identifier.")
    speaker: SpeakerPoint = _optional("The speaker point the request was made with, if any.")
    sync: OutputSync = _optional("The output's lip sync (when completed and measured).")
    notes: list[str] = _optional(
        "What a user should know about a completed output, when there is anything: e.g. "
        "that the transcript did not match the audio and the phones were recognised from the "
        "audio alone, or that the largest face stood in where no speaker was found."
    )
    output_expired: bool = _optional(
        "true once a completed request's output was deleted at the end of the server's "
        "retention time (it then has no output_url)."
    )
    progress: float = _optional("While processing: how much of the work is done, 0 to 1.")
    stage: Literal["fetching", "analysing", "rendering", "scoring"] = _optional(
        "While processing: what the worker is doing (fetching the URL inputs, analysing the "
        "video, rendering the output, scoring its lip sync)."
    )


class LipsyncEstimate(BaseModel):
    """What a job with these inputs and options would produce and cost; nothing is started."""

    duration: float = Field(description="Length of the output in seconds (after sync_mode).")
    frames: int = Field(description="Frames the output will have.")
    fps: float = Field(description="Output frames per second (the source video's rate).")
    tokens: int = Field(
        description="Requests of the key's quota the job will use (each job uses one)."
    )
    processing_seconds: float = Field(
        description="Expected processing time once a worker starts it, from the engine's "
        "measured throughput on 2 CPU cores (the server's CHAMELAION_ESTIMATE_PIXELS_PER_SECOND)"
        "; the time spent queued is not included."
    )


class LipsyncRequestDeleted(BaseModel):
    id: str = Field(description="The deleted request's ID.", json_schema_extra={"format": "uuid"})
    # No default: the field is always sent, so the document marks it required.
    deleted: Literal[True] = Field(description="Always true.")


class Pagination(BaseModel):
    limit: int
    offset: int
    total: int


class RequestListResponse(BaseModel):
    data: list[LipsyncRequest]
    pagination: Pagination


class Waveform(BaseModel):
    rate: int = Field(description="Bins per second.")
    peaks: list[float] = Field(
        description="The largest absolute sample (0-1) of the output's sound in each bin, from "
        "the output's first frame."
    )


class MouthTrack(BaseModel):
    """The output's mouth, frame by frame, and its sound, on one time axis (for plotting)."""

    fps: float = Field(description="Output frames per second.")
    opening: list[float | None] = Field(
        description="Per output frame, the rendered mouth opening: lip gap over mouth width "
        "(0 closed, about 0.15 while talking, 0.5 wide open); null where no face was "
        "re-animated."
    )
    waveform: Waveform


class SourceLink(BaseModel):
    url: str = Field(
        description="Signed, expiring URL of the request's source video (the file as it was "
        "uploaded or fetched).",
        json_schema_extra={"format": "uri"},
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"


def utc_text(moment: datetime) -> str:
    """`2026-04-07T10:00:00Z`. Runs for every time of every listed request, hence isoformat
    (several times faster than strftime) cut after the seconds, rather than anything clearer."""
    if moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def _contract_error(exc: ValidationError) -> ApiError:
    """The 400 for a body that failed validation: `invalid reference_id` when that value (a
    string) is all that is wrong, else `invalid request body`."""
    problems = exc.errors()
    if all(p["loc"][:1] == ("reference_id",) and p["type"] != "string_type" for p in problems):
        return ApiError(400, errors.INVALID_REFERENCE_ID)
    if all(p["loc"][:1] == ("speaker",) for p in problems):
        return ApiError(400, errors.INVALID_SPEAKER)
    return ApiError(400, errors.INVALID_BODY)


def _check_address(url: str, allow_private_urls: bool) -> None:
    """A URL whose host is a literal address the fetch guard would refuse (loopback, private,
    link-local, ...) is refused now; a host name is checked when it is connected to."""
    if allow_private_urls:
        return
    address = literal_address(url)
    if address is not None and not address_allowed(address):
        raise ApiError(400, errors.URL_NOT_ALLOWED)


def _check_options(options: JobOptions, allow_private_urls: bool) -> None:
    if options.model not in MODELS:
        raise ApiError(400, errors.UNSUPPORTED_MODEL)
    if options.webhook_url is not None:
        _check_address(options.webhook_url, allow_private_urls)
    if options.transcript is not None and len(options.transcript) > MAX_TRANSCRIPT_CHARS:
        raise ApiError(400, errors.TRANSCRIPT_TOO_LONG)
    # Only the tag's shape: which languages espeak-ng reads is the workers' installation
    # (an API host may not have it), and a language it lacks is a note, not a failure.
    if not is_language_tag(options.transcript_language):
        raise ApiError(400, errors.INVALID_TRANSCRIPT_LANGUAGE)


def validate_generate(raw: bytes, allow_private_urls: bool) -> tuple[GenerateBody, str, str]:
    """The JSON body as a model plus its (video URL, audio URL) in normalised form (what the
    worker will fetch), or the contract's 400 for the first mistake."""
    try:
        body = GenerateBody.model_validate_json(raw)
    except ValidationError as exc:
        raise _contract_error(exc) from exc
    if any(item.type not in ("video", "audio") for item in body.inputs):
        raise ApiError(400, errors.BAD_INPUT_TYPE)
    videos = [item.url for item in body.inputs if item.type == "video"]
    audios = [item.url for item in body.inputs if item.type == "audio"]
    if len(videos) != 1:
        raise ApiError(400, errors.ONE_VIDEO)
    if len(audios) != 1:
        raise ApiError(400, errors.ONE_AUDIO)
    _check_options(body, allow_private_urls)
    for url in (videos[0], audios[0]):
        _check_address(url, allow_private_urls)
    return body, videos[0], audios[0]


def validate_upload_fields(fields: Mapping[str, str], allow_private_urls: bool) -> JobOptions:
    """The upload's text fields as the same options a JSON body carries, or the 400. The
    `speaker` field is JSON text (an object, as OpenAPI sends object fields of a form)."""
    text = dict(fields)
    speaker_json = text.pop("speaker", None)
    try:
        options = JobOptions.model_validate_strings(text)
    except ValidationError as exc:
        raise _contract_error(exc) from exc
    if speaker_json is not None:
        try:
            speaker = SpeakerPoint.model_validate_json(speaker_json)
        except ValidationError as exc:
            raise ApiError(400, errors.INVALID_SPEAKER) from exc
        options = options.model_copy(update={"speaker": speaker})
    _check_options(options, allow_private_urls)
    return options
