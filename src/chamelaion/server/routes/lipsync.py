"""Creating lip-sync requests: from two URLs (JSON) or from two uploaded files (multipart).

Both routes take the same options through one validator (`schemas.JobOptions`), honour an
`Idempotency-Key` the same way (`idempotency`), and create the job through `_create_job`.
"""

from __future__ import annotations

import errno
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from chamelaion.server import errors
from chamelaion.server.auth import Caller, generate_caller, read_caller
from chamelaion.server.config import Settings
from chamelaion.server.errors import ApiError
from chamelaion.server.estimate import estimate
from chamelaion.server.fetch import FetchError, download
from chamelaion.server.idempotency import (
    HEADER,
    KEY_PATTERN,
    REPLAYED_HEADER,
    IdempotentCreate,
    check_key,
    fingerprint,
)
from chamelaion.server.keys import consume_quota
from chamelaion.server.models import InputKind, LipsyncJob
from chamelaion.server.queue.jobs import submit
from chamelaion.server.routes.common import AUTHENTICATED, error_responses
from chamelaion.server.schemas import (
    JobOptions,
    LipsyncEstimate,
    LipsyncGenerate,
    validate_generate,
    validate_upload_fields,
)
from chamelaion.server.state import AppState, app_state
from chamelaion.server.storage import Storage
from chamelaion.server.uploads import DRAIN_LIMIT, FILE_FIELDS, UploadForm, receive_upload
from chamelaion.server.webhooks import can_sign_webhooks

router = APIRouter(tags=["lipsync"])

MAX_JSON_BODY = 1024 * 1024

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Any unique string (e.g. a UUID), 1-255 printable ASCII characters. A "
        "request with the key of one made in the last 24 hours gets that request's response "
        "(the same request_id, header `Idempotent-Replayed: true`) and creates no job; with "
        "another body it is a 409.",
        json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    ),
]


_REPLAY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The request was created, or (with an `Idempotency-Key` seen before) "
        "this is the response of the request that was.",
        "headers": {
            REPLAYED_HEADER: {
                "description": "`true` when this answers a repeat of an earlier request.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }
}


def _create_job(
    state: AppState, caller: Caller, job: LipsyncJob, idempotent: IdempotentCreate | None
) -> str:
    """Insert the job and count it against the key's quota, atomically; then hand it to the
    Celery queue, if that is the queue (only after the commit, so no worker looks too soon).

    Returns the request id to answer with: the new job's, or that of the earlier create with
    the same idempotency key (then nothing was created)."""
    if idempotent is not None:
        state.idempotency_purger.maybe_purge()
    with state.sessions() as session:
        if idempotent is not None:
            earlier = idempotent.claim(session, job.id)
            if earlier is not None:
                return earlier
        if job.webhook_url is not None and not can_sign_webhooks(session, caller.account_id):
            raise ApiError(400, errors.NO_WEBHOOK_SECRET)
        if not consume_quota(session, caller.key_id):
            raise ApiError(402, errors.TOKEN_LIMIT)
        submit(session, job)
        session.commit()
    if state.dispatcher is not None:
        state.dispatcher.enqueue(job.id)
    return job.id


def _require_room(state: AppState) -> None:
    """Refuse new jobs while the disk is below its free-space floor (before reading a byte of
    the body): a job accepted now would only fail later, and an upload could fill the disk."""
    if not Storage(state.settings).has_room():
        raise ApiError(507, errors.INSUFFICIENT_STORAGE)


def _accepted(request_id: str, created_id: str) -> JSONResponse:
    headers = {REPLAYED_HEADER: "true"} if request_id != created_id else None
    return JSONResponse({"status": "success", "request_id": request_id}, headers=headers)


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _read_json_body(request: Request) -> bytes:
    """The body, or 413 when it passes MAX_JSON_BODY. What the client is still sending is read
    and dropped (up to DRAIN_LIMIT), so it gets the 413 and keeps its connection."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BODY + DRAIN_LIMIT:
        raise ApiError(413, errors.BODY_TOO_LARGE)  # hopeless: do not read any of it
    raw = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received <= MAX_JSON_BODY:
            raw += chunk
        elif received > MAX_JSON_BODY + DRAIN_LIMIT:
            break
    if received > MAX_JSON_BODY:
        raise ApiError(413, errors.BODY_TOO_LARGE)
    return bytes(raw)


def _job(
    request_id: str,
    caller: Caller,
    options: JobOptions,
    kind: InputKind,
    video_source: str,
    audio_source: str,
) -> LipsyncJob:
    return LipsyncJob(
        id=request_id,
        account_id=caller.account_id,
        api_key_id=caller.key_id,
        reference_id=options.reference_id,
        input_kind=kind.value,
        video_source=video_source,
        audio_source=audio_source,
        model=options.model,
        sync_mode=options.sync_mode.value,
        disable_active_speaker_detection=options.disable_active_speaker_detection,
        transcript=options.transcript,
        transcript_language=options.transcript_language if options.transcript else None,
        **_speaker_columns(options),
        webhook_url=options.webhook_url,
    )


def _speaker_columns(options: JobOptions) -> dict[str, Any]:
    point = options.speaker
    if point is None:
        return {}
    return {"speaker_frame": point.frame, "speaker_x": point.x, "speaker_y": point.y}


# The generate and estimate routes read their bodies themselves (one validator, its own error
# strings); the document still says what they take.
_GENERATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateBody"}}},
    }
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"$ref": "#/components/schemas/GenerateWithMediaForm"}
            }
        },
    }
}


@router.post(
    "/lipsync/generate",
    response_model=LipsyncGenerate,
    summary="Generate lip sync from URLs",
    description="Starts a lip sync job from exactly one remote video URL and one remote audio "
    "URL. The response includes a request identifier to poll later.",
    responses={
        **_REPLAY_RESPONSE,
        **error_responses(400, *AUTHENTICATED, 402, 409, 413, 415, 507),
    },
    openapi_extra=_GENERATE_BODY,
)
async def generate(
    request: Request,
    caller: Annotated[Caller, Depends(generate_caller)],
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    _require_room(app_state(request))
    if not _is_json(request.headers.get("content-type")):
        raise ApiError(415, errors.NOT_JSON)
    key = check_key(idempotency_key)
    raw = await _read_json_body(request)
    state = app_state(request)
    body, video_url, audio_url = validate_generate(raw, state.settings.allow_private_urls)
    job = _job(str(uuid.uuid4()), caller, body, InputKind.URL, video_url, audio_url)
    idempotent = None
    if key is not None:
        idempotent = IdempotentCreate(
            caller.account_id, key, fingerprint("generate", body.model_dump_json())
        )
    request_id = await run_in_threadpool(_create_job, state, caller, job, idempotent)
    return _accepted(request_id, job.id)


def _check_uploads(video: Path, audio: Path, options: JobOptions) -> None:
    """Refuse, before any quota is spent, what the worker would refuse: files the engine
    cannot decode, a still image, or inputs over the engine's caps (by the engine's own
    rules, `media.check_video`/`check_audio`; probing reads headers and one frame), or a
    speaker point past the video's frames."""
    from chamelaion.engine import (
        InvalidMediaError,
        LipsyncOptions,
        StillImageError,
        TooLongError,
        TooManyPixelsError,
    )
    from chamelaion.engine.media import check_audio, check_video, probe

    caps = LipsyncOptions()
    for path, check, invalid, too_long in (
        (video, check_video, errors.INVALID_VIDEO, errors.VIDEO_TOO_LONG),
        (audio, check_audio, errors.INVALID_AUDIO, errors.AUDIO_TOO_LONG),
    ):
        try:
            info = probe(path)
            check(info, caps)
        except StillImageError as exc:
            raise ApiError(400, errors.STILL_IMAGE) from exc
        except InvalidMediaError as exc:
            raise ApiError(400, invalid) from exc
        except TooManyPixelsError as exc:
            raise ApiError(400, errors.VIDEO_TOO_LARGE) from exc
        except TooLongError as exc:
            raise ApiError(400, too_long) from exc
        point = options.speaker
        if path == video and point is not None and point.frame >= info.frame_count:
            raise ApiError(400, errors.SPEAKER_BEYOND_VIDEO)


async def _receive_media(
    request: Request, state: AppState, directory: Path
) -> tuple[UploadForm, JobOptions, Path, Path]:
    """The upload streamed into `directory`, and its options, video and audio, or the 400
    (the same for creating a job and estimating one)."""
    try:
        form = await receive_upload(request, directory, state.settings.max_upload_bytes)
    except OSError as exc:  # the disk filled up under the upload, despite the floor
        if exc.errno != errno.ENOSPC:
            raise
        raise ApiError(507, errors.INSUFFICIENT_STORAGE) from exc
    for name in FILE_FIELDS:
        if len(form.files.get(name, [])) != 1:
            raise ApiError(400, errors.ONE_VIDEO if name == "video" else errors.ONE_AUDIO)
    options = validate_upload_fields(form.fields, state.settings.allow_private_urls)
    return form, options, form.files["video"][0], form.files["audio"][0]


@router.post(
    "/lipsync/generate-with-media",
    response_model=LipsyncGenerate,
    summary="Generate lip sync from uploaded media",
    description="Starts a lip sync job by uploading one video file and one audio file as "
    "multipart form-data. Both files are checked before the job is accepted: decodable, a "
    "video rather than a still image, within the engine's resolution and duration caps.",
    responses={
        **_REPLAY_RESPONSE,
        **error_responses(400, *AUTHENTICATED, 402, 409, 413, 415, 507),
    },
    openapi_extra=_UPLOAD_BODY,
)
async def generate_with_media(
    request: Request,
    caller: Annotated[Caller, Depends(generate_caller)],
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    key = check_key(idempotency_key)
    state = app_state(request)
    _require_room(state)
    request_id = str(uuid.uuid4())
    directory = Storage(state.settings).input_dir(request_id)
    answer = None
    try:
        form, options, video, audio = await _receive_media(request, state, directory)
        await run_in_threadpool(_check_uploads, video, audio, options)
        job = _job(
            request_id,
            caller,
            options,
            InputKind.UPLOAD,
            str(video.resolve()),
            str(audio.resolve()),
        )
        idempotent = None
        if key is not None:
            digests = (form.digests[video], form.digests[audio])
            idempotent = IdempotentCreate(
                caller.account_id,
                key,
                fingerprint("generate-with-media", options.model_dump_json(), *digests),
            )
        answer = await run_in_threadpool(_create_job, state, caller, job, idempotent)
    finally:
        if answer != request_id:  # refused, abandoned or replayed: leave nothing behind
            shutil.rmtree(directory, ignore_errors=True)
    return _accepted(answer, request_id)


_ESTIMATE_DESCRIPTION = (
    "Takes exactly what {route} takes, validated the same way, and answers what the job would "
    "produce and cost: the output's duration and frames, the tokens (quota) it would use and "
    "its expected processing time. Starts no job and uses no quota; rate limited as a read."
)


def _fetch_for_estimate(settings: Settings, urls: dict[str, str], directory: Path) -> None:
    """Fetch the URL inputs as the worker would (the same guard, caps and deadlines)."""
    for kind, url in urls.items():
        try:
            download(
                url,
                directory / kind,
                settings.max_fetch_bytes,
                settings.fetch_connect_timeout,
                settings.fetch_read_timeout,
                settings.allow_private_urls,
                total_timeout=settings.fetch_total_timeout,
            )
        except FetchError as exc:
            raise ApiError(400, errors.FETCH_FAILED.format(kind=kind, reason=exc)) from exc


@contextmanager
def _estimate_dir(state: AppState) -> Iterator[Path]:
    """Where an estimate's inputs are measured (not created here), removed whatever happens:
    an estimate keeps nothing. Under the inputs folder, so the reaper finds what a kill left."""
    directory = Storage(state.settings).input_dir(f"estimate-{uuid.uuid4()}")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _estimate_files(settings: Settings, options: JobOptions, video: Path, audio: Path) -> Any:
    _check_uploads(video, audio, options)
    return estimate(settings, options, video, audio).model_dump()


@router.post(
    "/lipsync/estimate",
    response_model=LipsyncEstimate,
    summary="Estimate a lip sync job from URLs",
    description=_ESTIMATE_DESCRIPTION.format(route="`POST /v1/lipsync/generate`")
    + " The URLs are fetched to be measured.",
    responses=error_responses(400, *AUTHENTICATED, 413, 415, 507),
    openapi_extra=_GENERATE_BODY,
)
async def estimate_from_urls(
    request: Request, _caller: Annotated[Caller, Depends(read_caller)]
) -> JSONResponse:
    state = app_state(request)
    _require_room(state)
    if not _is_json(request.headers.get("content-type")):
        raise ApiError(415, errors.NOT_JSON)
    raw = await _read_json_body(request)
    body, video_url, audio_url = validate_generate(raw, state.settings.allow_private_urls)
    with _estimate_dir(state) as directory:
        directory.mkdir(parents=True)
        urls = {"video": video_url, "audio": audio_url}
        await run_in_threadpool(_fetch_for_estimate, state.settings, urls, directory)
        answer = await run_in_threadpool(
            _estimate_files, state.settings, body, directory / "video", directory / "audio"
        )
    return JSONResponse(answer)


@router.post(
    "/lipsync/estimate-with-media",
    response_model=LipsyncEstimate,
    summary="Estimate a lip sync job from uploaded media",
    description=_ESTIMATE_DESCRIPTION.format(route="`POST /v1/lipsync/generate-with-media`"),
    responses=error_responses(400, *AUTHENTICATED, 413, 415, 507),
    openapi_extra=_UPLOAD_BODY,
)
async def estimate_with_media(
    request: Request, _caller: Annotated[Caller, Depends(read_caller)]
) -> JSONResponse:
    state = app_state(request)
    _require_room(state)
    with _estimate_dir(state) as directory:
        _form, options, video, audio = await _receive_media(request, state, directory)
        answer = await run_in_threadpool(_estimate_files, state.settings, options, video, audio)
    return JSONResponse(answer)
