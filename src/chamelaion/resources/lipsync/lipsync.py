"""``client.lipsync``: start lip sync jobs (``/v1/lipsync/generate[-with-media]``)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping

from ..._base_client import AsyncAPIClient, RequestOptions, SyncAPIClient
from ..._files import FileTypes, check_file
from ..._resource import AsyncAPIResource, SyncAPIResource
from ..._types import NOT_GIVEN, Headers, NotGiven, Timeout
from ...types.lipsync_estimate import LipsyncEstimate
from ...types.lipsync_generate import LipsyncGenerate
from ...types.lipsync_generate_params import Input, ModelName, SpeakerPoint, SyncMode
from .requests import AsyncRequests, Requests

__all__ = ["AsyncLipsync", "Lipsync"]

GENERATE_PATH = "/v1/lipsync/generate"
GENERATE_WITH_MEDIA_PATH = "/v1/lipsync/generate-with-media"
# The estimates take exactly what the creates take, at these paths, and start nothing.
ESTIMATE_PATHS = {
    GENERATE_PATH: "/v1/lipsync/estimate",
    GENERATE_WITH_MEDIA_PATH: "/v1/lipsync/estimate-with-media",
}


def _as_estimate(options: RequestOptions) -> RequestOptions:
    """The create's request sent to its estimate route instead: the same body and files; no
    idempotency key (an estimate creates nothing, so repeating it is always safe)."""
    return dataclasses.replace(options, path=ESTIMATE_PATHS[options.path], idempotency_key=None)


def _idempotency_key(given: str | None) -> str:
    """The caller's key, else a fresh one: every create is made safe to retry."""
    return given if given is not None else str(uuid.uuid4())


def _generate_options(
    *,
    inputs: Iterable[Input],
    disable_active_speaker_detection: bool | None,
    reference_id: str | None,
    model: ModelName | None,
    sync_mode: SyncMode | None,
    webhook_url: str | None,
    transcript: str | None,
    transcript_language: str | None,
    speaker: SpeakerPoint | None,
    idempotency_key: str | None,
    extra_headers: Headers | None,
    timeout: Timeout | NotGiven,
) -> RequestOptions:
    if isinstance(inputs, (str, bytes, Mapping)):
        raise TypeError("inputs must be a list of {'type': ..., 'url': ...} dicts")
    body: dict[str, object] = {"inputs": [dict(item) for item in inputs]}
    if disable_active_speaker_detection is not None:
        body["disable_active_speaker_detection"] = disable_active_speaker_detection
    if reference_id is not None:
        body["reference_id"] = reference_id
    if model is not None:
        body["model"] = model
    if sync_mode is not None:
        body["sync_mode"] = sync_mode
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    if transcript is not None:
        body["transcript"] = transcript
    if transcript_language is not None:
        body["transcript_language"] = transcript_language
    if speaker is not None:
        body["speaker"] = dict(speaker)
    return RequestOptions(
        "POST",
        GENERATE_PATH,
        json_data=body,
        headers=extra_headers,
        timeout=timeout,
        idempotency_key=_idempotency_key(idempotency_key),
    )


def _generate_with_media_options(
    *,
    video: FileTypes,
    audio: FileTypes,
    disable_active_speaker_detection: bool | None,
    model: ModelName | None,
    reference_id: str | None,
    sync_mode: SyncMode | None,
    webhook_url: str | None,
    transcript: str | None,
    transcript_language: str | None,
    speaker: SpeakerPoint | None,
    idempotency_key: str | None,
    extra_headers: Headers | None,
    timeout: Timeout | NotGiven,
) -> RequestOptions:
    check_file("video", video)
    check_file("audio", audio)
    form: dict[str, str] = {}
    if disable_active_speaker_detection is not None:
        form["disable_active_speaker_detection"] = (
            "true" if disable_active_speaker_detection else "false"
        )
    if model is not None:
        form["model"] = model
    if reference_id is not None:
        form["reference_id"] = reference_id
    if sync_mode is not None:
        form["sync_mode"] = sync_mode
    if webhook_url is not None:
        form["webhook_url"] = webhook_url
    if transcript is not None:
        form["transcript"] = transcript
    if transcript_language is not None:
        form["transcript_language"] = transcript_language
    if speaker is not None:  # an object field of a form travels as JSON text
        form["speaker"] = json.dumps(dict(speaker))
    return RequestOptions(
        "POST",
        GENERATE_WITH_MEDIA_PATH,
        data=form,
        files={"video": video, "audio": audio},
        headers=extra_headers,
        timeout=timeout,
        idempotency_key=_idempotency_key(idempotency_key),
    )


class Lipsync(SyncAPIResource):
    """Start lip sync jobs; ``.requests`` follows them."""

    requests: Requests

    def __init__(self, client: SyncAPIClient) -> None:
        super().__init__(client)
        self.requests = Requests(client)

    def generate(
        self,
        *,
        inputs: Iterable[Input],
        disable_active_speaker_detection: bool | None = None,
        reference_id: str | None = None,
        model: ModelName | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncGenerate:
        """Start a lip sync job from one remote video URL and one remote audio URL.

        Args:
          inputs: exactly one ``{"type": "video", "url": ...}`` and one
            ``{"type": "audio", "url": ...}`` (absolute http(s) URLs), in any order.
          disable_active_speaker_detection: use max-face preprocessing instead.
          reference_id: your own identifier, usable later with ``requests.retrieve``/``list``.
          model: ``"lipsync-2"`` (the default and only model).
          sync_mode: what to do when audio and video lengths differ: ``cut_off``, ``loop``,
            ``bounce``, ``silence`` or ``remap``.
          webhook_url: where the server POSTs the request object, signed with your account's
            webhook secret, once the job has finished; check it with ``verify_webhook``.
          transcript: what the new audio says, if you have the script (at most 20 000
            characters): its phones, aligned to the audio, make the mouth surer. One that does
            not match the audio is not used, and the finished request's ``notes`` say so.
          transcript_language: the transcript's language as a BCP-47 tag (``"en"`` by default,
            ``"fr-FR"``, ``"pt-BR"``, ...); in a language the server's espeak-ng does not read,
            the transcript is not used and the ``notes`` say so.
          speaker: the person to re-animate, pointed at: ``{"frame": n, "x": 0-1, "y": 0-1}``,
            a point on their face in source frame ``n`` (0-based), x and y as fractions of the
            picture's width and height. Overrides active speaker detection; the person is
            followed into other shots only where recognised (the ``notes`` say where not).
          idempotency_key: sent as ``Idempotency-Key``; by default a fresh UUID per call, kept
            across this call's retries. Pass your own to make a create safe to repeat across
            calls or processes (the server answers a repeat within 24 h with the first
            response and makes no second job).
          extra_headers: headers to add to this request.
          timeout: this request's timeout, overriding the client's.

        Returns the new request's ``request_id``; poll it with ``requests.retrieve``/``wait``.
        """
        return self._client.request(
            LipsyncGenerate,
            _generate_options(
                inputs=inputs,
                disable_active_speaker_detection=disable_active_speaker_detection,
                reference_id=reference_id,
                model=model,
                sync_mode=sync_mode,
                webhook_url=webhook_url,
                transcript=transcript,
                transcript_language=transcript_language,
                speaker=speaker,
                idempotency_key=idempotency_key,
                extra_headers=extra_headers,
                timeout=timeout,
            ),
        )

    def generate_with_media(
        self,
        *,
        video: FileTypes,
        audio: FileTypes,
        disable_active_speaker_detection: bool | None = None,
        model: ModelName | None = None,
        reference_id: str | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncGenerate:
        """Start a lip sync job by uploading a video file and an audio file.

        ``video`` and ``audio`` may each be a path (``str``/``Path``), ``bytes``, an open binary
        file, or a ``(filename, file, content_type)`` tuple. Files are streamed, never read
        whole into memory, and sent again from the start if the request is retried.
        Other arguments as for ``generate``.
        """
        return self._client.request(
            LipsyncGenerate,
            _generate_with_media_options(
                video=video,
                audio=audio,
                disable_active_speaker_detection=disable_active_speaker_detection,
                model=model,
                reference_id=reference_id,
                sync_mode=sync_mode,
                webhook_url=webhook_url,
                transcript=transcript,
                transcript_language=transcript_language,
                speaker=speaker,
                idempotency_key=idempotency_key,
                extra_headers=extra_headers,
                timeout=timeout,
            ),
        )

    def estimate(
        self,
        *,
        inputs: Iterable[Input],
        disable_active_speaker_detection: bool | None = None,
        reference_id: str | None = None,
        model: ModelName | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncEstimate:
        """What ``generate`` with these arguments would produce and cost (output duration and
        frames, tokens, expected processing time), without starting a job or using quota.
        The server fetches the URLs to measure them and validates everything as ``generate``
        does, so a mistake gets the same error."""
        return self._client.request(
            LipsyncEstimate,
            _as_estimate(
                _generate_options(
                    inputs=inputs,
                    disable_active_speaker_detection=disable_active_speaker_detection,
                    reference_id=reference_id,
                    model=model,
                    sync_mode=sync_mode,
                    webhook_url=webhook_url,
                    transcript=transcript,
                    transcript_language=transcript_language,
                    speaker=speaker,
                    idempotency_key=None,
                    extra_headers=extra_headers,
                    timeout=timeout,
                )
            ),
        )

    def estimate_with_media(
        self,
        *,
        video: FileTypes,
        audio: FileTypes,
        disable_active_speaker_detection: bool | None = None,
        model: ModelName | None = None,
        reference_id: str | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncEstimate:
        """What ``generate_with_media`` with these arguments would produce and cost, without
        starting a job or using quota (the files are uploaded, measured and dropped)."""
        return self._client.request(
            LipsyncEstimate,
            _as_estimate(
                _generate_with_media_options(
                    video=video,
                    audio=audio,
                    disable_active_speaker_detection=disable_active_speaker_detection,
                    model=model,
                    reference_id=reference_id,
                    sync_mode=sync_mode,
                    webhook_url=webhook_url,
                    transcript=transcript,
                    transcript_language=transcript_language,
                    speaker=speaker,
                    idempotency_key=None,
                    extra_headers=extra_headers,
                    timeout=timeout,
                )
            ),
        )


class AsyncLipsync(AsyncAPIResource):
    """Start lip sync jobs; ``.requests`` follows them."""

    requests: AsyncRequests

    def __init__(self, client: AsyncAPIClient) -> None:
        super().__init__(client)
        self.requests = AsyncRequests(client)

    async def generate(
        self,
        *,
        inputs: Iterable[Input],
        disable_active_speaker_detection: bool | None = None,
        reference_id: str | None = None,
        model: ModelName | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncGenerate:
        """Start a lip sync job from one remote video URL and one remote audio URL.

        See ``Lipsync.generate``.
        """
        return await self._client.request(
            LipsyncGenerate,
            _generate_options(
                inputs=inputs,
                disable_active_speaker_detection=disable_active_speaker_detection,
                reference_id=reference_id,
                model=model,
                sync_mode=sync_mode,
                webhook_url=webhook_url,
                transcript=transcript,
                transcript_language=transcript_language,
                speaker=speaker,
                idempotency_key=idempotency_key,
                extra_headers=extra_headers,
                timeout=timeout,
            ),
        )

    async def generate_with_media(
        self,
        *,
        video: FileTypes,
        audio: FileTypes,
        disable_active_speaker_detection: bool | None = None,
        model: ModelName | None = None,
        reference_id: str | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        idempotency_key: str | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncGenerate:
        """Start a lip sync job by uploading a video file and an audio file.

        See ``Lipsync.generate_with_media``. File reads happen in a worker thread, chunk by
        chunk, so they do not block the event loop.
        """
        return await self._client.request(
            LipsyncGenerate,
            _generate_with_media_options(
                video=video,
                audio=audio,
                disable_active_speaker_detection=disable_active_speaker_detection,
                model=model,
                reference_id=reference_id,
                sync_mode=sync_mode,
                webhook_url=webhook_url,
                transcript=transcript,
                transcript_language=transcript_language,
                speaker=speaker,
                idempotency_key=idempotency_key,
                extra_headers=extra_headers,
                timeout=timeout,
            ),
        )

    async def estimate(
        self,
        *,
        inputs: Iterable[Input],
        disable_active_speaker_detection: bool | None = None,
        reference_id: str | None = None,
        model: ModelName | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncEstimate:
        """What ``generate`` with these arguments would produce and cost (output duration and
        frames, tokens, expected processing time), without starting a job or using quota.
        The server fetches the URLs to measure them and validates everything as ``generate``
        does, so a mistake gets the same error."""
        return await self._client.request(
            LipsyncEstimate,
            _as_estimate(
                _generate_options(
                    inputs=inputs,
                    disable_active_speaker_detection=disable_active_speaker_detection,
                    reference_id=reference_id,
                    model=model,
                    sync_mode=sync_mode,
                    webhook_url=webhook_url,
                    transcript=transcript,
                    transcript_language=transcript_language,
                    speaker=speaker,
                    idempotency_key=None,
                    extra_headers=extra_headers,
                    timeout=timeout,
                )
            ),
        )

    async def estimate_with_media(
        self,
        *,
        video: FileTypes,
        audio: FileTypes,
        disable_active_speaker_detection: bool | None = None,
        model: ModelName | None = None,
        reference_id: str | None = None,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        transcript: str | None = None,
        transcript_language: str | None = None,
        speaker: SpeakerPoint | None = None,
        extra_headers: Headers | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LipsyncEstimate:
        """What ``generate_with_media`` with these arguments would produce and cost, without
        starting a job or using quota (the files are uploaded, measured and dropped)."""
        return await self._client.request(
            LipsyncEstimate,
            _as_estimate(
                _generate_with_media_options(
                    video=video,
                    audio=audio,
                    disable_active_speaker_detection=disable_active_speaker_detection,
                    model=model,
                    reference_id=reference_id,
                    sync_mode=sync_mode,
                    webhook_url=webhook_url,
                    transcript=transcript,
                    transcript_language=transcript_language,
                    speaker=speaker,
                    idempotency_key=None,
                    extra_headers=extra_headers,
                    timeout=timeout,
                )
            ),
        )
