"""The seed's contract over real HTTP: every error string and status, auth, listing, lookups."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import uvicorn

from chamelaion.server.app import create_app
from chamelaion.server.config import Settings
from chamelaion.server.keys import revoke_key
from server.helpers import ApiServer, free_port, new_key, sessions_for

VIDEO = {"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"}
AUDIO = {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SPEAKER = 'invalid speaker: give {"frame": a source frame index from 0, "x": 0 to 1, "y": 0 to 1}'
LANGUAGE = 'invalid transcript_language: give a BCP-47 language tag (e.g. "en", "fr-FR", "pt-BR")'


def generate(client: httpx.Client, body: object, **kwargs: object) -> httpx.Response:
    return client.post("/lipsync/generate", json=body, **kwargs)  # type: ignore[arg-type]


def submit(client: httpx.Client, **extra: object) -> str:
    response = generate(client, {"inputs": [VIDEO, AUDIO], **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    return str(uuid.UUID(body["request_id"]))


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert (response.status_code, response.json()) == (status, {"error": message})


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing authorization header"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid authorization format"),
        ({"Authorization": "Token abc"}, "invalid authorization format"),
        ({"Authorization": "Bearer"}, "missing token"),
        ({"x-api-key": ""}, "missing token"),
        ({"x-api-key": "chm_doesnotexist"}, "invalid token"),
        ({"Authorization": "Bearer chm_doesnotexist"}, "invalid token"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/lipsync/requests", "/v1/lipsync/requests/anything"])
def test_auth_errors(
    api_server: ApiServer, headers: dict[str, str], message: str, path: str
) -> None:
    response = httpx.get(api_server.server.base_url + path, headers=headers)
    assert_error(response, 401, message)


def test_auth_is_checked_before_the_body(api_server: ApiServer) -> None:
    response = httpx.post(f"{api_server.api}/lipsync/generate", content=b"{not json")
    assert_error(response, 401, "missing authorization header")
    response = httpx.post(
        f"{api_server.api}/lipsync/generate-with-media",
        content=b"garbage",
        headers={"x-api-key": "chm_wrong", "content-type": "text/plain"},
    )
    assert_error(response, 401, "invalid token")


def test_both_auth_headers_work(api_server: ApiServer) -> None:
    for headers in (
        {"x-api-key": api_server.key.key},
        {"Authorization": f"Bearer {api_server.key.key}"},
    ):
        response = httpx.get(f"{api_server.api}/lipsync/requests", headers=headers)
        assert response.status_code == 200, response.text


def test_revoked_key_is_unauthorized(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "to-revoke")
    with api_server.client(key) as client:
        assert client.get("/lipsync/requests").status_code == 200
        with sessions_for(api_server.server.data_dir)() as session:
            revoke_key(session, key.key_id)
            session.commit()
        assert_error(client.get("/lipsync/requests"), 401, "unauthorized")
        assert_error(generate(client, {"inputs": [VIDEO, AUDIO]}), 401, "unauthorized")


def test_token_limit(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "quota", max_requests=2)
    with api_server.client(key) as client:
        submit(client)
        submit(client)
        assert_error(generate(client, {"inputs": [VIDEO, AUDIO]}), 402, "token limit reached")
        # reads are not counted against the quota
        assert client.get("/lipsync/requests").json()["pagination"]["total"] == 2


def test_rate_limit_with_retry_after(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "slow", rate_limit_generate="3/minute")
    with api_server.client(key) as client:
        for _ in range(3):
            submit(client)
        response = generate(client, {"inputs": [VIDEO, AUDIO]})
        assert_error(response, 429, "rate limit exceeded")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        # the generate limit is separate from the read limit
        assert client.get("/lipsync/requests").status_code == 200


def test_read_rate_limit(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "reader", rate_limit_read="2/minute")
    with api_server.client(key) as client:
        assert client.get("/lipsync/requests").status_code == 200
        assert client.get("/lipsync/requests/x").status_code == 404
        response = client.get("/lipsync/requests")
        assert_error(response, 429, "rate limit exceeded")
        assert int(response.headers["Retry-After"]) >= 1


# --- generate: body validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([VIDEO, AUDIO], "invalid request body"),
        ({}, "invalid request body"),
        ({"inputs": "nope"}, "invalid request body"),
        ({"inputs": [VIDEO, {"type": "audio"}]}, "invalid request body"),
        ({"inputs": [VIDEO, {"type": "audio", "url": 5}]}, "invalid request body"),
        ({"inputs": [VIDEO, {"type": "audio", "url": "ftp://x/y.wav"}]}, "invalid request body"),
        ({"inputs": [VIDEO, {"type": "audio", "url": "/relative.wav"}]}, "invalid request body"),
        ({"inputs": [VIDEO, {"type": "audio", "url": "http://"}]}, "invalid request body"),
        ({"inputs": [VIDEO, {"type": "audio", "url": "http://a b/c"}]}, "invalid request body"),
        (
            {"inputs": [VIDEO, AUDIO], "disable_active_speaker_detection": "yes"},
            "invalid request body",
        ),
        ({"inputs": [VIDEO, AUDIO], "reference_id": 7}, "invalid request body"),
        ({"inputs": [VIDEO, AUDIO], "reference_id": ""}, "invalid reference_id"),
        ({"inputs": [VIDEO, AUDIO], "sync_mode": "sideways"}, "invalid request body"),
        (
            {"inputs": [VIDEO, {"type": "image", "url": "https://a/b.png"}]},
            'input type must be "video" or "audio"',
        ),
        ({"inputs": [VIDEO, {"type": 3, "url": "https://a/b.png"}]}, "invalid request body"),
        ({"inputs": [AUDIO]}, "expected exactly one video input"),
        ({"inputs": [VIDEO, VIDEO, AUDIO]}, "expected exactly one video input"),
        ({"inputs": []}, "expected exactly one video input"),
        ({"inputs": [VIDEO]}, "expected exactly one audio input"),
        ({"inputs": [VIDEO, AUDIO, AUDIO]}, "expected exactly one audio input"),
        ({"inputs": [VIDEO, AUDIO], "model": "lipsync-1"}, "unsupported model"),
        ({"inputs": [VIDEO, AUDIO], "transcript": 42}, "invalid request body"),
        (
            {"inputs": [VIDEO, AUDIO], "transcript": "x" * 20_001},
            "transcript too long: at most 20000 characters",
        ),
        ({"inputs": [VIDEO, AUDIO], "transcript": "hi", "transcript_language": "en us"}, LANGUAGE),
        ({"inputs": [VIDEO, AUDIO], "transcript_language": "../../etc/passwd"}, LANGUAGE),
        ({"inputs": [VIDEO, AUDIO], "transcript_language": "en-" + "a" * 65}, LANGUAGE),
        ({"inputs": [VIDEO, AUDIO], "transcript_language": 7}, "invalid request body"),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": 0, "x": 1.2, "y": 0.5}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": 0, "x": 0.5, "y": -0.01}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": -1, "x": 0.5, "y": 0.5}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": 2**31, "x": 0.5, "y": 0.5}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": 1.5, "x": 0.5, "y": 0.5}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": "3", "x": 0.5, "y": 0.5}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": 3, "x": 0.5}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": {"frame": 3, "x": 0.5, "y": 0.5, "z": 1}}, SPEAKER),
        ({"inputs": [VIDEO, AUDIO], "speaker": [3, 0.5, 0.5]}, SPEAKER),
    ],
)
@pytest.mark.store_independent
def test_generate_body_errors(api_server: ApiServer, body: object, message: str) -> None:
    with api_server.client() as client:
        assert_error(generate(client, body), 400, message)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"null", b"[1,2", b'{"inputs": [}'])
@pytest.mark.store_independent
def test_malformed_json(api_server: ApiServer, raw: bytes) -> None:
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate", content=raw, headers={"content-type": "application/json"}
        )
        assert_error(response, 400, "invalid request body")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.store_independent
def test_generate_needs_json(api_server: ApiServer, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with api_server.client() as client:
        body = json.dumps({"inputs": [VIDEO, AUDIO]}).encode()
        response = client.post("/lipsync/generate", content=body, headers=headers)
        assert_error(response, 415, "content-type must be application/json")


def test_generate_accepts_json_with_charset_and_all_options(api_server: ApiServer) -> None:
    with api_server.client() as client:
        body = {
            "inputs": [AUDIO, VIDEO],  # order does not matter
            "disable_active_speaker_detection": True,
            "reference_id": "options-1",
            "model": "lipsync-2",
            "sync_mode": "loop",
            "transcript": "x" * 20_000,  # at the cap, in any language espeak-ng reads
            "transcript_language": "pt-BR",
            # An int is a number too, and 12.0 an integer (JSON Schema's reading).
            "speaker": {"frame": 12.0, "x": 0.25, "y": 1},
        }
        response = client.post(
            "/lipsync/generate",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json; charset=utf-8"},
        )
        assert response.status_code == 200, response.text
        fetched = client.get(f"/lipsync/requests/{response.json()['request_id']}").json()
        assert fetched["reference_id"] == "options-1"
        assert fetched["status"] == "queued"
        assert fetched["speaker"] == {"frame": 12, "x": 0.25, "y": 1.0}


# --- reading requests -------------------------------------------------------------------------


def test_request_object_shape(api_server: ApiServer) -> None:
    with api_server.client() as client:
        request_id = submit(client)
        body = client.get(f"/lipsync/requests/{request_id}").json()
        # absent fields are omitted, never null
        assert set(body) == {"id", "status", "created_at"}
        assert body["id"] == request_id and body["status"] == "queued"
        assert TIME.match(body["created_at"])


def test_both_prefixes_serve_the_same_data(api_server: ApiServer) -> None:
    with api_server.client() as client:
        request_id = submit(client)
    headers = {"x-api-key": api_server.key.key}
    base = api_server.server.base_url
    via_api = httpx.get(f"{base}/api/v1/lipsync/requests/{request_id}", headers=headers).json()
    via_v1 = httpx.get(f"{base}/v1/lipsync/requests/{request_id}", headers=headers).json()
    assert via_api == via_v1


def test_lookup_by_reference_id_returns_the_newest(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "refs")
    with api_server.client(key) as client:
        first = submit(client, reference_id="dub-episode-42")
        second = submit(client, reference_id="dub-episode-42")
        assert first != second
        body = client.get("/lipsync/requests/dub-episode-42").json()
        assert body["id"] == second and body["reference_id"] == "dub-episode-42"
        assert_error(client.get("/lipsync/requests/dub-episode-43"), 404, "not found")
        assert_error(client.get(f"/lipsync/requests/{uuid.uuid4()}"), 404, "not found")


def test_reference_ids_with_spaces_and_symbols_can_be_looked_up(api_server: ApiServer) -> None:
    with api_server.client() as client:
        request_id = submit(client, reference_id="dubs: episode 42 (ja) #1 ?ü")
        response = client.get(
            "/lipsync/requests/dubs%3A%20episode%2042%20%28ja%29%20%231%20%3F%C3%BC"
        )
        assert response.status_code == 200, response.text
        assert response.json()["id"] == request_id


def test_pagination_and_filter(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "pages")
    with api_server.client(key) as client:
        ids = [submit(client, reference_id="batch" if i % 2 else "other") for i in range(7)]
        page = client.get("/lipsync/requests").json()
        assert page["pagination"] == {"limit": 20, "offset": 0, "total": 7}
        assert [item["id"] for item in page["data"]] == ids  # oldest first
        page = client.get("/lipsync/requests", params={"limit": 3, "offset": 2}).json()
        assert page["pagination"] == {"limit": 3, "offset": 2, "total": 7}
        assert [item["id"] for item in page["data"]] == ids[2:5]
        page = client.get("/lipsync/requests", params={"offset": 6, "limit": 100}).json()
        assert [item["id"] for item in page["data"]] == ids[6:]
        page = client.get("/lipsync/requests", params={"offset": 50}).json()
        assert page == {"data": [], "pagination": {"limit": 20, "offset": 50, "total": 7}}
        page = client.get("/lipsync/requests", params={"reference_id": "batch"}).json()
        assert page["pagination"]["total"] == 3
        assert [item["id"] for item in page["data"]] == ids[1::2]
        assert {item["reference_id"] for item in page["data"]} == {"batch"}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "x"},
        {"limit": 1.5},
    ],
)
def test_bad_query_values(api_server: ApiServer, params: dict[str, object]) -> None:
    with api_server.client() as client:
        assert_error(client.get("/lipsync/requests", params=params), 400, "invalid request body")  # type: ignore[arg-type]


def test_other_accounts_requests_are_not_found(api_server: ApiServer) -> None:
    with api_server.client() as mine, api_server.client(api_server.other) as theirs:
        request_id = submit(mine, reference_id="private-ref")
        assert_error(theirs.get(f"/lipsync/requests/{request_id}"), 404, "not found")
        assert_error(theirs.get("/lipsync/requests/private-ref"), 404, "not found")
        listed = theirs.get("/lipsync/requests", params={"limit": 100}).json()["data"]
        assert request_id not in {item["id"] for item in listed}
        assert mine.get(f"/lipsync/requests/{request_id}").status_code == 200


def test_a_second_key_of_the_same_account_sees_its_requests(api_server: ApiServer) -> None:
    sibling = new_key(api_server.server.data_dir, "sibling", account_id=api_server.key.account_id)
    with api_server.client() as first, api_server.client(sibling) as second:
        request_id = submit(first)
        assert second.get(f"/lipsync/requests/{request_id}").status_code == 200


# --- everything else --------------------------------------------------------------------------


@pytest.mark.store_independent
def test_unknown_route_and_method(api_server: ApiServer) -> None:
    base = api_server.server.base_url
    assert_error(httpx.get(f"{base}/api/v2/nothing"), 404, "not found")
    response = httpx.delete(
        f"{api_server.api}/lipsync/requests", headers={"x-api-key": api_server.key.key}
    )
    assert_error(response, 405, "method not allowed")


def test_health_and_readiness(api_server: ApiServer) -> None:
    base = api_server.server.base_url
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}


@pytest.mark.store_independent
def test_openapi_describes_the_contract(api_server: ApiServer) -> None:
    base = api_server.server.base_url
    schema = httpx.get(f"{base}/openapi.json").json()
    paths = schema["paths"]
    for prefix in ("/api/v1", "/v1"):
        generate_op = paths[f"{prefix}/lipsync/generate"]["post"]
        assert set(generate_op["responses"]) >= {"200", "400", "401", "402", "415", "429", "500"}
        assert "422" not in generate_op["responses"]
        body_ref = generate_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body_ref == "#/components/schemas/GenerateBody"
        upload_op = paths[f"{prefix}/lipsync/generate-with-media"]["post"]
        assert "413" in upload_op["responses"]
        assert "multipart/form-data" in upload_op["requestBody"]["content"]
        assert "404" in paths[f"{prefix}/lipsync/requests/{{id}}"]["get"]["responses"]
        assert paths[f"{prefix}/lipsync/requests"]["get"]["security"]
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert httpx.get(f"{base}/docs").status_code == 200


@pytest.mark.store_independent
def test_access_log_is_json_and_never_contains_keys(api_server: ApiServer) -> None:
    with api_server.client() as client:
        client.get("/lipsync/requests")
    httpx.get(
        f"{api_server.api}/lipsync/requests",
        headers={"Authorization": f"Bearer {api_server.other.key}"},
    )
    log = api_server.server.logs()
    for key in (api_server.key, api_server.other):
        assert key.key not in log
        assert key.key[4:12] not in log  # not even the prefix
    entries = [json.loads(line) for line in log.splitlines() if '"chamelaion.access"' in line]
    assert any(e["key_id"] == api_server.key.key_id and e["status"] == 200 for e in entries)
    assert all({"method", "path", "status", "duration_ms"} <= set(e) for e in entries)


@pytest.mark.store_independent
def test_times_are_utc_seconds_with_z() -> None:
    from datetime import datetime, timedelta, timezone

    from chamelaion.server.schemas import utc_text

    assert utc_text(datetime(2026, 4, 7, 10, 0, 5, 999999, tzinfo=timezone.utc)) == (
        "2026-04-07T10:00:05Z"
    )
    assert utc_text(datetime(2026, 4, 7, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-04-07T10:00:00Z"
    )


@pytest.mark.store_independent
def test_readyz_reports_an_unreachable_database(tmp_path: Path) -> None:
    """An app whose database cannot be opened still answers: 503, in the error shape."""
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}"
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(), log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.config.port}"
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(f"{base}/healthz").status_code == 200
        response = httpx.get(f"{base}/readyz")
        assert (response.status_code, response.json()) == (503, {"error": "database unavailable"})
    finally:
        server.should_exit = True
        thread.join(10)
