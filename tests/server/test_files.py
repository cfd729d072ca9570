"""Signed output URLs: they work, expire, resist tampering, and serve byte ranges."""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chamelaion.server.models import InputKind, JobStatus, LipsyncJob, utcnow
from chamelaion.server.storage import OutputSigner
from server.helpers import EXAMPLE_INPUTS, ApiServer, sessions_for

# Signing and byte ranges: the one row these read is read as every GET reads it (test_contract
# runs that on PostgreSQL), so test-postgres leaves these out.
pytestmark = pytest.mark.store_independent

CONTENT = os.urandom(300_000)


@pytest.fixture(scope="module")
def finished(api_server: ApiServer) -> tuple[str, str]:
    """A completed request of account A whose output holds CONTENT: (request id, output_url).

    Written straight to the server's database and data dir, as a worker would leave them, so
    these tests exercise the download route alone; the end-to-end tests use real outputs.
    """
    request_id = str(uuid.uuid4())
    output = api_server.server.data_dir / "outputs" / f"{request_id}.mp4"
    output.write_bytes(CONTENT)
    now = utcnow()
    with sessions_for(api_server.server.data_dir)() as session:
        session.add(
            LipsyncJob(
                id=request_id,
                account_id=api_server.key.account_id,
                status=JobStatus.COMPLETED.value,
                created_at=now,
                started_at=now,
                finished_at=now,
                input_kind=InputKind.URL.value,
                video_source="https://example.com/v.mp4",
                audio_source="https://example.com/a.wav",
                output_path=str(output),
            )
        )
        session.commit()
    with api_server.client() as client:
        body = client.get(f"/lipsync/requests/{request_id}").json()
    assert body["status"] == "completed"
    assert set(body) == {"id", "status", "created_at", "started_at", "finished_at", "output_url"}
    return request_id, body["output_url"]


def signer(api_server: ApiServer, ttl: int) -> OutputSigner:
    secret = (api_server.server.data_dir / "secret_key").read_bytes().strip()
    return OutputSigner(secret, ttl)


def test_output_url_downloads_without_api_key(finished: tuple[str, str]) -> None:
    request_id, url = finished
    assert urlsplit(url).path == f"/api/v1/files/{request_id}.mp4"
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == CONTENT


def test_head_gives_size_without_body(finished: tuple[str, str]) -> None:
    response = httpx.head(finished[1])
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(CONTENT)
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(CONTENT) - 1),
        ("bytes=-500", len(CONTENT) - 500, len(CONTENT) - 1),
        ("bytes=299990-999999", 299990, len(CONTENT) - 1),
    ],
)
def test_range_requests(finished: tuple[str, str], header: str, start: int, end: int) -> None:
    response = httpx.get(finished[1], headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response.content == CONTENT[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-1", "bytes=0-1,5-6", "bytes=-"])
def test_unusable_ranges_send_the_whole_file(finished: tuple[str, str], header: str) -> None:
    response = httpx.get(finished[1], headers={"Range": header})
    assert response.status_code == 200
    assert response.content == CONTENT


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=999999-1000000", "bytes=-0"])
def test_range_past_the_end_is_416(finished: tuple[str, str], header: str) -> None:
    response = httpx.get(finished[1], headers={"Range": header})
    assert response.status_code == 416
    assert response.json() == {"error": "range not satisfiable"}
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"


def test_tampered_urls_are_refused(api_server: ApiServer, finished: tuple[str, str]) -> None:
    request_id, url = finished
    query = parse_qs(urlsplit(url).query)
    expires, signature = int(query["expires"][0]), query["signature"][0]
    base = f"{api_server.server.base_url}/api/v1/files"
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for tampered in (
        f"{base}/{request_id}.mp4?expires={expires}&signature={flipped}",
        f"{base}/{request_id}.mp4?expires={expires + 3600}&signature={signature}",
        f"{base}/{uuid.uuid4()}.mp4?expires={expires}&signature={signature}",
        f"{base}/{request_id}.mp4?expires={expires}&signature=",
        f"{base}/{request_id}.mp4?expires={expires}&signature=%C3%A9{signature[2:]}",
    ):
        response = httpx.get(tampered)
        assert (response.status_code, response.json()) == (403, {"error": "invalid signature"})
    response = httpx.get(f"{base}/{request_id}.mp4")
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


def test_expired_url_is_refused(api_server: ApiServer, finished: tuple[str, str]) -> None:
    request_id, _ = finished
    """Links are signed as if issued an hour ago with a one-minute lifetime: the same
    signature scheme, no sleeping (a 1 s lifetime failed under load before the first GET)."""
    links = signer(api_server, ttl=60)
    fresh = links.url(api_server.server.base_url, request_id)
    stale = links.url(api_server.server.base_url, request_id, now=time.time() - 3600)
    assert httpx.get(fresh).status_code == 200
    response = httpx.get(stale)
    assert (response.status_code, response.json()) == (403, {"error": "link expired"})


def test_signed_url_for_an_unfinished_request_is_not_found(api_server: ApiServer) -> None:
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate",
            json={"inputs": EXAMPLE_INPUTS},
        )
    request_id = response.json()["request_id"]
    url = signer(api_server, ttl=60).url(api_server.server.base_url, request_id)
    response = httpx.get(url)
    assert (response.status_code, response.json()) == (404, {"error": "not found"})
