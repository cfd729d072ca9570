"""What the server gives the Studio: its page under a strict policy, a completed request's
mouth track and a signed link to its source video (both kept by the worker beside the output;
the end-to-end tests check that a real job leaves them)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

import mediagen
from chamelaion.server.models import InputKind, JobStatus, LipsyncJob, utcnow
from chamelaion.server.routes.studio import content_security_policy
from chamelaion.server.schemas import MouthTrack
from chamelaion.server.storage import OutputSigner
from chamelaion.server.tracks import PEAKS_PER_SECOND, mouth_track
from server.helpers import ApiServer, Key, sessions_for

SOURCE = os.urandom(200_000)
TRACK = {"fps": 25.0, "opening": [0.0, 0.12, None, 0.3], "waveform": {"rate": 50, "peaks": [0.5]}}


def add_job(api_server: ApiServer, key: Key, status: JobStatus, **fields: object) -> str:
    """A request written straight to the server's database, as a worker would leave it."""
    request_id = str(uuid.uuid4())
    with sessions_for(api_server.server.data_dir)() as session:
        session.add(
            LipsyncJob(
                id=request_id,
                account_id=key.account_id,
                status=status.value,
                created_at=utcnow(),
                input_kind=InputKind.URL.value,
                video_source="https://example.com/v.mp4",
                audio_source="https://example.com/a.wav",
                **fields,
            )
        )
        session.commit()
    return request_id


@pytest.fixture(scope="module")
def completed(api_server: ApiServer) -> str:
    """A completed request of account A with its output, mouth track and source kept."""
    request_id = add_job(api_server, api_server.key, JobStatus.COMPLETED)
    outputs = api_server.server.data_dir / "outputs"
    (outputs / f"{request_id}.mp4").write_bytes(b"output")
    (outputs / f"{request_id}.mouth.json").write_text(json.dumps(TRACK))
    (outputs / f"{request_id}.source").write_bytes(SOURCE)
    return request_id


# --- the page ---------------------------------------------------------------------------------


@pytest.mark.store_independent
def test_the_page_and_its_files_carry_the_policy(api_server: ApiServer) -> None:
    base = api_server.server.base_url
    for path, media_type in (
        ("/", "text/html"),
        ("/studio/app.js", "text/javascript"),
        ("/studio/studio.css", "text/css"),
    ):
        response = httpx.get(base + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type)
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "unsafe" not in policy
        assert response.headers["x-frame-options"] == "DENY"
    assert httpx.head(f"{base}/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/studio/nothing.js", "/studio/index.html", "/studio/..%2Fapp.py", "/studio/"]
)
@pytest.mark.store_independent
def test_only_the_shipped_files_are_served(api_server: ApiServer, path: str) -> None:
    response = httpx.get(api_server.server.base_url + path)
    assert (response.status_code, response.json()) == (404, {"error": "not found"})


@pytest.mark.store_independent
def test_the_page_is_not_part_of_the_api_schema(api_server: ApiServer) -> None:
    paths = httpx.get(f"{api_server.server.base_url}/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/studio") for p in paths)
    assert "/v1/lipsync/requests/{id}/mouth" in paths
    assert "/api/v1/files/{request_id}/source" in paths


@pytest.mark.store_independent
def test_media_may_come_from_the_public_base_url() -> None:
    # blob: for the speaker-point preview, which plays the file the user chose, from the page
    assert "media-src 'self' blob:;" in content_security_policy(None)
    policy = content_security_policy("https://api.example.com/base")
    assert "media-src 'self' blob: https://api.example.com;" in policy
    assert "connect-src 'self';" in policy


# --- the mouth track --------------------------------------------------------------------------


def test_the_mouth_track_of_a_completed_request(api_server: ApiServer, completed: str) -> None:
    with api_server.client() as client:
        for prefix in ("/api/v1", "/v1"):
            response = client.get(f"{api_server.server.base_url}{prefix}/lipsync/requests/"
                                  f"{completed}/mouth")  # fmt: skip
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.json() == TRACK
    MouthTrack.model_validate(TRACK)  # the documented shape


def test_a_mouth_track_needs_the_owner_and_a_completed_request_with_one(
    api_server: ApiServer, completed: str
) -> None:
    queued = add_job(api_server, api_server.key, JobStatus.QUEUED)
    trackless = add_job(api_server, api_server.key, JobStatus.COMPLETED)
    with api_server.client(api_server.other) as theirs, api_server.client() as mine:
        assert theirs.get(f"/lipsync/requests/{completed}/mouth").status_code == 404
        for request_id in (queued, trackless, str(uuid.uuid4())):
            response = mine.get(f"/lipsync/requests/{request_id}/mouth")
            assert (response.status_code, response.json()) == (404, {"error": "not found"})
    response = httpx.get(f"{api_server.api}/lipsync/requests/{completed}/mouth")
    assert (response.status_code, response.json()) == (
        401,
        {"error": "missing authorization header"},
    )


def test_a_reference_id_shaped_like_a_sub_path_is_still_a_reference(api_server: ApiServer) -> None:
    request_id = add_job(api_server, api_server.key, JobStatus.QUEUED, reference_id="ep/mouth")
    with api_server.client() as client:
        response = client.get("/lipsync/requests/ep/mouth")
    assert response.status_code == 200 and response.json()["id"] == request_id


@pytest.mark.store_independent
def test_the_worker_track_follows_frames_and_sound(tmp_path: Path) -> None:
    """`mouth_track` on a real video with speech: one opening per frame (null where no face was
    re-animated), and peaks that are loud where the speech is and quiet in the silence."""
    speech = mediagen.silence(1.0) + mediagen.speak("hello mama") + mediagen.silence(1.0)
    video = mediagen.write_face_video(tmp_path / "talk.mp4", speech.duration, 25.0, 160, 120,
                                      audio=speech)  # fmt: skip
    opening = np.linspace(0, 0.4, 10).astype(np.float32)
    opening[3] = np.nan
    track = mouth_track(25.0, opening, video)
    assert track is not None
    assert track["fps"] == 25.0 and track["opening"][3] is None
    assert track["opening"][9] == pytest.approx(0.4)
    peaks = np.array(track["waveform"]["peaks"])
    assert track["waveform"]["rate"] == PEAKS_PER_SECOND
    assert len(peaks) == pytest.approx(speech.duration * PEAKS_PER_SECOND, abs=3)
    silent, spoken = peaks[: PEAKS_PER_SECOND * 8 // 10], peaks[PEAKS_PER_SECOND + 10 : -60]
    assert silent.max() < 0.02 < 0.1 < spoken.max()
    MouthTrack.model_validate(track)


@pytest.mark.store_independent
def test_no_track_when_the_output_has_no_sound(short_face_video: Path) -> None:
    assert mouth_track(25.0, np.zeros(50, np.float32), short_face_video) is None


# --- the source video -------------------------------------------------------------------------


def source_link(api_server: ApiServer, request_id: str) -> str:
    with api_server.client() as client:
        response = client.get(f"/lipsync/requests/{request_id}/source")
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


def test_the_source_link_downloads_the_source(api_server: ApiServer, completed: str) -> None:
    url = source_link(api_server, completed)
    assert urlsplit(url).path == f"/api/v1/files/{completed}/source"
    response = httpx.get(url)  # no key: the signature authorises it
    assert response.status_code == 200 and response.content == SOURCE
    ranged = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == SOURCE[100:200]
    assert int(httpx.head(url).headers["content-length"]) == len(SOURCE)


@pytest.mark.store_independent
def test_output_and_source_signatures_do_not_open_each_other(
    api_server: ApiServer, completed: str
) -> None:
    with api_server.client() as client:
        output_url = client.get(f"/lipsync/requests/{completed}").json()["output_url"]
    source_url = source_link(api_server, completed)
    base = f"{api_server.server.base_url}/api/v1/files/{completed}"
    swapped = (
        f"{base}/source?{urlsplit(output_url).query}",
        f"{base}.mp4?{urlsplit(source_url).query}",
    )
    for url in swapped:
        response = httpx.get(url)
        assert (response.status_code, response.json()) == (403, {"error": "invalid signature"})
    query = parse_qs(urlsplit(source_url).query)
    later = (
        f"{base}/source?expires={int(query['expires'][0]) + 1}&signature={query['signature'][0]}"
    )
    assert httpx.get(later).status_code == 403


@pytest.mark.store_independent
def test_an_expired_source_link_is_refused(api_server: ApiServer, completed: str) -> None:
    secret = (api_server.server.data_dir / "secret_key").read_bytes().strip()
    url = OutputSigner(secret, -1).source_url(api_server.server.base_url, completed)
    response = httpx.get(url)
    assert (response.status_code, response.json()) == (403, {"error": "link expired"})


def test_no_source_link_without_a_kept_source(api_server: ApiServer, completed: str) -> None:
    queued = add_job(api_server, api_server.key, JobStatus.QUEUED)
    sourceless = add_job(api_server, api_server.key, JobStatus.COMPLETED)
    with api_server.client(api_server.other) as theirs, api_server.client() as mine:
        assert theirs.get(f"/lipsync/requests/{completed}/source").status_code == 404
        for request_id in (queued, sourceless):
            response = mine.get(f"/lipsync/requests/{request_id}/source")
            assert (response.status_code, response.json()) == (404, {"error": "not found"})
    # A validly signed link to a request that is not completed finds nothing either.
    secret = (api_server.server.data_dir / "secret_key").read_bytes().strip()
    url = OutputSigner(secret, 60).source_url(api_server.server.base_url, queued)
    assert httpx.get(url).status_code == 404
