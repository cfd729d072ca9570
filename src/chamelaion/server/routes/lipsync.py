"""Creating lip-sync requests: from two URLs (JSON) or from two uploaded files (multipart)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from chamelaion.server import errors
from chamelaion.server.auth import Caller, generate_caller
from chamelaion.server.errors import ApiError
from chamelaion.server.jobs import submit
from chamelaion.server.keys import consume_quota
from chamelaion.server.models import InputKind, LipsyncJob
from chamelaion.server.routes.common import AUTHENTICATED, error_responses
from chamelaion.server.schemas import (
    MAX_REFERENCE_ID,
    SYNC_MODES,
    LipsyncGenerate,
    check_model,
    validate_generate,
)
from chamelaion.server.state import AppState, app_state
from chamelaion.server.storage import Storage
from chamelaion.server.uploads import FILE_FIELDS, UploadForm, receive_upload

router = APIRouter(tags=["lipsync"])

MAX_JSON_BODY = 1024 * 1024


def _create_job(state: AppState, caller: Caller, job: LipsyncJob) -> None:
    """Insert the job and count it against the key's quota, atomically; then hand it to the
    Celery queue, if that is the queue (only after the commit, so no worker looks too soon)."""
    with state.sessions() as session:
        if not consume_quota(session, caller.key_id):
            raise ApiError(402, errors.TOKEN_LIMIT)
        submit(session, job)
        session.commit()
    if state.dispatcher is not None:
        state.dispatcher.enqueue(job.id)


def _accepted(request_id: str) -> JSONResponse:
    return JSONResponse({"status": "success", "request_id": request_id})


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


@router.post(
    "/lipsync/generate",
    response_model=LipsyncGenerate,
    summary="Generate lip sync from URLs",
    description="Starts a lip sync job from exactly one remote video URL and one remote audio "
    "URL. The response includes a request identifier to poll later.",
    responses=error_responses(400, *AUTHENTICATED, 402, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/GenerateBody"}}
            },
        }
    },
)
async def generate(
    request: Request, caller: Annotated[Caller, Depends(generate_caller)]
) -> JSONResponse:
    if not _is_json(request.headers.get("content-type")):
        raise ApiError(415, errors.NOT_JSON)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise ApiError(400, errors.INVALID_BODY)
    try:
        payload: Any = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        raise ApiError(400, errors.INVALID_BODY) from exc
    body, video_url, audio_url = validate_generate(payload)
    job = LipsyncJob(
        id=str(uuid.uuid4()),
        account_id=caller.account_id,
        api_key_id=caller.key_id,
        reference_id=body.reference_id,
        input_kind=InputKind.URL.value,
        video_source=video_url,
        audio_source=audio_url,
        model=body.model,
        sync_mode=body.sync_mode,
        disable_active_speaker_detection=body.disable_active_speaker_detection,
    )
    await run_in_threadpool(_create_job, app_state(request), caller, job)
    return _accepted(job.id)


_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["video", "audio"],
    "properties": {
        "video": {"type": "string", "format": "binary", "description": "Source video file."},
        "audio": {"type": "string", "format": "binary", "description": "Target audio file."},
        "disable_active_speaker_detection": {
            "type": "boolean",
            "description": "Disable active speaker detection and use the largest face.",
        },
        "model": {"type": "string", "enum": ["lipsync-2"], "description": "Model selector."},
        "reference_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REFERENCE_ID,
            "description": "Optional client-provided identifier for later retrieval.",
        },
        "sync_mode": {"type": "string", "enum": list(SYNC_MODES)},
    },
}

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _upload_options(form: UploadForm) -> tuple[bool, str, str, str | None]:
    """(disable_asd, model, sync_mode, reference_id) from the text fields, or a 400."""
    for name in FILE_FIELDS:
        if len(form.files.get(name, [])) != 1:
            raise ApiError(400, errors.ONE_VIDEO if name == "video" else errors.ONE_AUDIO)
    flag = form.fields.get("disable_active_speaker_detection", "false").strip().lower()
    if flag not in _TRUE + _FALSE:
        raise ApiError(400, errors.INVALID_BODY)
    sync_mode = form.fields.get("sync_mode", "cut_off")
    if sync_mode not in SYNC_MODES:
        raise ApiError(400, errors.INVALID_BODY)
    reference_id = form.fields.get("reference_id")
    if reference_id is not None and not 1 <= len(reference_id) <= MAX_REFERENCE_ID:
        raise ApiError(400, errors.INVALID_BODY)
    model = form.fields.get("model", "lipsync-2")
    check_model(model)
    return flag in _TRUE, model, sync_mode, reference_id


def _probe_uploads(video: Path, audio: Path) -> None:
    """Refuse files the engine could not decode now, rather than fail the job later."""
    from chamelaion.engine import InvalidMediaError
    from chamelaion.engine.media import probe

    for path, wants_video, message in (
        (video, True, errors.INVALID_VIDEO),
        (audio, False, errors.INVALID_AUDIO),
    ):
        try:
            info = probe(path)
        except InvalidMediaError as exc:
            raise ApiError(400, message) from exc
        if not (info.has_video if wants_video else info.has_audio):
            raise ApiError(400, message)


@router.post(
    "/lipsync/generate-with-media",
    response_model=LipsyncGenerate,
    summary="Generate lip sync from uploaded media",
    description="Starts a lip sync job by uploading one video file and one audio file as "
    "multipart form-data. Both files are checked to be decodable before the job is accepted.",
    responses=error_responses(400, *AUTHENTICATED, 402, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _UPLOAD_SCHEMA}},
        }
    },
)
async def generate_with_media(
    request: Request, caller: Annotated[Caller, Depends(generate_caller)]
) -> JSONResponse:
    state = app_state(request)
    request_id = str(uuid.uuid4())
    directory = Storage(state.settings).input_dir(request_id)
    created = False
    try:
        form = await receive_upload(request, directory, state.settings.max_upload_bytes)
        disable_asd, model, sync_mode, reference_id = _upload_options(form)
        video, audio = form.files["video"][0], form.files["audio"][0]
        await run_in_threadpool(_probe_uploads, video, audio)
        job = LipsyncJob(
            id=request_id,
            account_id=caller.account_id,
            api_key_id=caller.key_id,
            reference_id=reference_id,
            input_kind=InputKind.UPLOAD.value,
            video_source=str(video.resolve()),
            audio_source=str(audio.resolve()),
            model=model,
            sync_mode=sync_mode,
            disable_active_speaker_detection=disable_asd,
        )
        await run_in_threadpool(_create_job, state, caller, job)
        created = True
    finally:
        if not created:  # a refused (or abandoned) upload leaves nothing behind
            shutil.rmtree(directory, ignore_errors=True)
    return _accepted(request_id)
