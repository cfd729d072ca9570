"""`Idempotency-Key` on both generate routes, over real HTTP: a repeat creates nothing, another
body is a 409, and many racing requests with one key (threads on two server processes sharing
one database: SQLite here, PostgreSQL under `make test-postgres`) make exactly one job."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from chamelaion.server.models import IdempotencyKey, LipsyncJob, utcnow
from server.helpers import ApiServer, Key, Server, new_key, sessions_for

VIDEO = {"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"}
AUDIO = {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"}
BODY = {"inputs": [VIDEO, AUDIO], "reference_id": "idem"}


@pytest.fixture(scope="module")
def api_server(api_server: ApiServer) -> ApiServer:
    """The session's server, with a key of this module's own whose generate rate limit stays
    out of the way (the shared key's 60/minute is for the contract tests)."""
    key = new_key(api_server.server.data_dir, "idempotency", rate_limit_generate="100000/minute")
    return dataclasses.replace(api_server, key=key)


def generate(client: httpx.Client, key: str | None, body: object = BODY) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/lipsync/generate", json=body, headers=headers)


def jobs_of(data_dir: Path, key: Key) -> int:
    with sessions_for(data_dir)() as session:
        return (
            session.scalar(select(func.count()).where(LipsyncJob.account_id == key.account_id)) or 0
        )


def test_a_repeat_returns_the_first_response_and_creates_nothing(api_server: ApiServer) -> None:
    key = new_key(api_server.server.data_dir, "idem", max_requests=2)
    idempotency_key = str(uuid.uuid4())
    with api_server.client(key) as client:
        first = generate(client, idempotency_key)
        assert first.status_code == 200, first.text
        assert "Idempotent-Replayed" not in first.headers
        for _ in range(3):
            again = generate(client, idempotency_key)
            assert (again.status_code, again.json()) == (200, first.json())
            assert again.headers["Idempotent-Replayed"] == "true"
        # the same request written differently (key order, defaults spelt out) is the same
        spelt_out = {"reference_id": "idem", "sync_mode": "cut_off", "inputs": [VIDEO, AUDIO]}
        assert generate(client, idempotency_key, spelt_out).json() == first.json()
        # no job and no quota was spent on the repeats: the key's second job still fits
        assert generate(client, str(uuid.uuid4())).status_code == 200
        assert generate(client, None).status_code == 402
    assert jobs_of(api_server.server.data_dir, key) == 2


def test_the_retry_of_the_create_that_used_the_last_of_the_quota_is_answered(
    api_server: ApiServer,
) -> None:
    key = new_key(api_server.server.data_dir, "last-one", max_requests=1)
    idempotency_key = str(uuid.uuid4())
    with api_server.client(key) as client:
        first = generate(client, idempotency_key)
        assert first.status_code == 200, first.text
        again = generate(client, idempotency_key)
        assert (again.status_code, again.json()) == (200, first.json())
        for other_key in (None, str(uuid.uuid4())):
            response = generate(client, other_key)
            assert (response.status_code, response.json()) == (
                402,
                {"error": "token limit reached"},
            )
    assert jobs_of(api_server.server.data_dir, key) == 1


def test_the_same_key_with_another_body_is_a_409(api_server: ApiServer) -> None:
    idempotency_key = str(uuid.uuid4())
    with api_server.client() as client:
        assert generate(client, idempotency_key).status_code == 200
        other = generate(client, idempotency_key, {**BODY, "sync_mode": "loop"})
        assert (other.status_code, other.json()) == (
            409,
            {"error": "idempotency key already used with a different request"},
        )


def test_keys_belong_to_an_account(api_server: ApiServer) -> None:
    idempotency_key = str(uuid.uuid4())
    with api_server.client() as mine, api_server.client(api_server.other) as theirs:
        first = generate(mine, idempotency_key).json()["request_id"]
        second = generate(theirs, idempotency_key).json()["request_id"]
    assert first != second


@pytest.mark.parametrize("bad", ["", "x" * 256, "caf\u00e9", "tab\tinside"])
def test_malformed_keys_are_refused(api_server: ApiServer, bad: str) -> None:
    with api_server.client() as client:
        response = client.post(
            "/lipsync/generate",
            json=BODY,
            # as bytes: httpx encodes a str header value as ASCII, and "café" is not
            headers={b"Idempotency-Key": bad.encode("utf-8")},
        )
    assert (response.status_code, response.json()) == (400, {"error": "invalid idempotency key"})


def test_a_key_older_than_a_day_is_free_again(api_server: ApiServer) -> None:
    idempotency_key = str(uuid.uuid4())
    with api_server.client() as client:
        first = generate(client, idempotency_key).json()["request_id"]
        with sessions_for(api_server.server.data_dir)() as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == idempotency_key)
                .values(created_at=utcnow() - timedelta(hours=25))
            )
            session.commit()
        later = generate(client, idempotency_key, {**BODY, "sync_mode": "loop"})
        assert later.status_code == 200, later.text
        assert later.json()["request_id"] != first
        assert generate(client, idempotency_key).status_code == 409  # now bound to the new one


def test_uploads_replay_and_conflict_and_leave_no_files(
    api_server: ApiServer, short_face_video: Path, short_speech: Path
) -> None:
    idempotency_key = str(uuid.uuid4())
    inputs = api_server.server.data_dir / "inputs"

    def upload(audio: bytes) -> httpx.Response:
        with api_server.client() as client:
            return client.post(
                "/lipsync/generate-with-media",
                files={"video": short_face_video.read_bytes(), "audio": audio},
                data={"reference_id": "idem-upload"},
                headers={"Idempotency-Key": idempotency_key},
            )

    first = upload(short_speech.read_bytes())
    assert first.status_code == 200, first.text
    before = set(inputs.iterdir())
    again = upload(short_speech.read_bytes())
    assert (again.status_code, again.json()) == (200, first.json())
    other = upload(short_speech.read_bytes() + b"\0")  # another file: another request
    assert other.status_code == 409
    assert set(inputs.iterdir()) == before  # the repeat's and the conflict's files are gone
    # a JSON create with the key of an upload is another request too
    with api_server.client() as client:
        assert generate(client, idempotency_key).status_code == 409


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two API processes on one data dir and database, as replicas behind a balancer."""
    data_dir = tmp_path_factory.mktemp("idempotency-race")
    env = {"CHAMELAION_RATE_LIMIT_GENERATE": "100000/minute"}
    servers = (Server(data_dir, env=env), Server(data_dir, env=env, name="replica"))
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def race(servers: tuple[Server, Server], key: Key, idempotency_key: str) -> list[httpx.Response]:
    """PER_SERVER requests to each server with one key, released at the same instant."""
    start = threading.Barrier(len(servers) * PER_SERVER)
    answers: list[httpx.Response] = []

    def post(server: Server) -> None:
        with httpx.Client(headers={"x-api-key": key.key}, timeout=60) as client:
            start.wait()
            answers.append(
                client.post(
                    f"{server.api}/lipsync/generate",
                    json=BODY,
                    headers={"Idempotency-Key": idempotency_key},
                )
            )

    threads = [
        threading.Thread(target=post, args=(server,))
        for server in servers
        for _ in range(PER_SERVER)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


PER_SERVER = 6


def test_racing_requests_with_one_key_make_one_job(two_servers: tuple[Server, Server]) -> None:
    data_dir = two_servers[0].data_dir
    key = new_key(data_dir, "race")
    rounds = 5
    for _ in range(rounds):
        answers = race(two_servers, key, str(uuid.uuid4()))
        assert [a.status_code for a in answers] == [200] * 2 * PER_SERVER, answers[0].text
        assert len({a.json()["request_id"] for a in answers}) == 1
        assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    assert jobs_of(data_dir, key) == rounds
    for server in two_servers:
        assert "Traceback" not in server.logs()
