"""Webhooks end to end: a real server, real jobs, and a real receiver on loopback.

The receiver answers each POST with the next status of its script (then 200), so retries can be
watched; deliveries are checked with the SDK's `verify_webhook`, as a client would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

import chamelaion
from chamelaion.server.config import Settings
from chamelaion.server.keys import key_prefix
from chamelaion.server.models import DeliveryStatus, InputKind, LipsyncJob, WebhookDelivery
from chamelaion.server.queue.hooks import job_store
from chamelaion.server.queue.jobs import submit
from chamelaion.server.webhooks import WebhookSender
from realserver import running
from server.helpers import (
    EXAMPLE_INPUTS,
    ApiServer,
    Key,
    MediaServer,
    Receiver,
    Server,
    database_url,
    new_key,
    secret_for,
    sessions_for,
)

FAST_RETRIES = {
    "CHAMELAION_ALLOW_PRIVATE_URLS": "true",  # the receiver and the media live on loopback
    "CHAMELAION_WEBHOOK_RETRY_BASE_SECONDS": "0.3",
    "CHAMELAION_WEBHOOK_TIMEOUT_SECONDS": "5",
}


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with a worker and fast retries for the tests that neither stop nor kill it
    (each has an account and a receiver of its own)."""
    server = Server(tmp_path_factory.mktemp("hooks"), env=FAST_RETRIES, workers=1)
    with running(server):
        yield server


def create_webhook_secret(data_dir: Path, account: str) -> str:
    """`chamelaion keys webhook-secret`, as an operator runs it; the secret it prints."""
    command = ["keys", "webhook-secret", account, "--data-dir", str(data_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "chamelaion.cli", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHAMELAION_DATABASE_URL": database_url(data_dir)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"(whsec_[A-Za-z0-9_-]{43})", result.stdout)
    assert found, result.stdout
    return found.group(1)


def failing_url_job(server: Server, key: Key, media_server: MediaServer, webhook: str) -> str:
    """A URL job whose video is missing (404): it fails within a second, no engine needed."""
    response = httpx.post(
        f"{server.api}/lipsync/generate",
        headers={"x-api-key": key.key},
        timeout=30,
        json={
            "inputs": [
                {"type": "video", "url": media_server.url("missing.mp4")},
                {"type": "audio", "url": media_server.url("missing.wav")},
            ],
            "webhook_url": webhook,
        },
    )
    assert response.status_code == 200, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def deliveries_of(data_dir: Path, request_id: str) -> list[WebhookDelivery]:
    with sessions_for(data_dir)() as session:
        return list(
            session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.request_id == request_id)
            ).all()
        )


def test_completed_job_is_delivered_signed_and_equal_to_a_get(
    hooks_server: Server, receiver: Receiver, short_face_video: Path, short_speech: Path
) -> None:
    data_dir = hooks_server.data_dir
    key = new_key(data_dir, "hooks")
    secret = create_webhook_secret(data_dir, key_prefix(key.key))  # as `keys list` shows it
    with httpx.Client(
        base_url=hooks_server.api, headers={"x-api-key": key.key}, timeout=30
    ) as client:
        with short_face_video.open("rb") as video, short_speech.open("rb") as audio:
            response = client.post(
                "/lipsync/generate-with-media",
                files={"video": video, "audio": audio},
                data={"webhook_url": receiver.url, "reference_id": "hooked"},
            )
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
        (delivery,) = receiver.wait_for(1)
        polled = client.get(f"/lipsync/requests/{request_id}").json()
    assert delivery.headers["Content-Type"] == "application/json"
    signature = delivery.headers["Chamelaion-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    sent = chamelaion.verify_webhook(delivery.body, signature, secret)
    assert sent.id == request_id and sent.status == "completed" and sent.reference_id == "hooked"
    # the same object a GET returns (the output link is signed afresh each time)
    got = chamelaion.types.LipsyncRequest.model_validate(polled)
    assert sent.model_dump(exclude={"output_url"}) == got.model_dump(exclude={"output_url"})
    assert sent.output_url and got.output_url
    assert sent.output_url.split("?")[0] == got.output_url.split("?")[0]
    tampered = delivery.body.replace(b"completed", b"failed!!!")
    with pytest.raises(chamelaion.WebhookVerificationError, match="does not match"):
        chamelaion.verify_webhook(tampered, signature, secret)
    with pytest.raises(chamelaion.WebhookVerificationError, match="does not match"):
        chamelaion.verify_webhook(delivery.body, signature, "whsec_" + "x" * 43)
    # The sender records the delivery once the receiver has answered, which on a loaded
    # machine can be after the test has read the body: wait for that, not for a new attempt.
    deadline = time.monotonic() + 30
    while (row := deliveries_of(data_dir, request_id)[0]).status == DeliveryStatus.SENDING.value:
        assert time.monotonic() < deadline, "the delivery was never recorded"
        time.sleep(0.05)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED.value, 1)


def test_failed_job_delivery_is_retried_after_500s(
    hooks_server: Server, receiver: Receiver, media_server: MediaServer
) -> None:
    data_dir = hooks_server.data_dir
    key = new_key(data_dir, "retries")
    secret = secret_for(data_dir, key.account_id)
    receiver.script = [500, 503]
    request_id = failing_url_job(hooks_server, key, media_server, receiver.url)
    deliveries = receiver.wait_for(3)
    time.sleep(1.0)  # a fourth would come now if the 200 had not been taken as delivered
    assert len(receiver.received) == 3
    ids = {delivery.headers["Chamelaion-Delivery"] for delivery in deliveries}
    assert len(ids) == 1  # one delivery, attempted three times
    for delivery in deliveries:
        sent = chamelaion.verify_webhook(
            delivery.body, delivery.headers["Chamelaion-Signature"], secret
        )
        assert sent.id == request_id and sent.status == "failed"
        assert sent.error_message == "failed to fetch video: HTTP 404"
    (row,) = deliveries_of(data_dir, request_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, "HTTP 503")


def test_pending_delivery_survives_a_server_restart(
    tmp_path: Path, receiver: Receiver, media_server: MediaServer
) -> None:
    key = new_key(tmp_path, "restart")
    secret = secret_for(tmp_path, key.account_id)
    receiver.then = 500  # the receiver is down for now
    server = Server(tmp_path, env=FAST_RETRIES, workers=1).start()
    try:
        request_id = failing_url_job(server, key, media_server, receiver.url)
        receiver.wait_for(2)
        server.kill()  # SIGKILL: whatever was in flight is cut off
        (row,) = deliveries_of(tmp_path, request_id)
        assert row.status in ("pending", "sending") and row.attempts >= 2
        receiver.then = 200  # the receiver is back
        server.start()
        deadline = time.monotonic() + 60
        while deliveries_of(tmp_path, request_id)[0].status != "delivered":
            assert time.monotonic() < deadline, "not delivered after the restart"
            time.sleep(0.1)
    finally:
        server.stop()
    last = receiver.received[-1]
    sent = chamelaion.verify_webhook(last.body, last.headers["Chamelaion-Signature"], secret)
    assert sent.id == request_id and sent.status == "failed"


def test_a_webhook_to_a_private_address_is_refused_like_a_fetch(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Without CHAMELAION_ALLOW_PRIVATE_URLS the loopback receiver is out of bounds, as it is
    for media fetches; with no retry window left, the first refusal is final."""
    key = new_key(tmp_path, "ssrf")
    secret_for(tmp_path, key.account_id)
    sessions = sessions_for(tmp_path)
    with sessions() as session:
        job = LipsyncJob(
            account_id=key.account_id,
            input_kind=InputKind.URL.value,
            video_source="https://example.com/v.mp4",
            audio_source="https://example.com/a.wav",
            webhook_url=receiver.url,
        )
        submit(session, job)
        session.commit()
    store = job_store(sessions)
    assert store.claim("w") is not None
    assert store.fail(job.id, "w", "failed to fetch video: HTTP 404")  # the hook owes a delivery
    settings = Settings(data_dir=tmp_path, webhook_retry_window_seconds=0)
    sender = WebhookSender(settings, sessions, "sender")
    assert sender.send_one() and not sender.send_one()
    (row,) = deliveries_of(tmp_path, job.id)
    assert (row.status, row.attempts) == ("gave_up", 1)
    assert row.last_error == "address of host 127.0.0.1 is not allowed"
    assert receiver.received == []


def test_webhook_url_is_checked_at_creation(api_server: ApiServer) -> None:
    inputs = EXAMPLE_INPUTS
    fresh = new_key(api_server.server.data_dir, "no-webhook-secret")
    with api_server.client(fresh) as client:
        no_secret = client.post(
            "/lipsync/generate", json={"inputs": inputs, "webhook_url": "https://example.com/h"}
        )
        assert no_secret.status_code == 400
        assert no_secret.json() == {
            "error": 'webhook_url needs a webhook secret: create one with "chamelaion keys '
            'webhook-secret"'
        }
        for bad in ("ftp://example.com/h", "/relative", "", "https://exa mple.com/", 7):
            response = client.post("/lipsync/generate", json={"inputs": inputs, "webhook_url": bad})
            assert (response.status_code, response.json()) == (
                400,
                {"error": "invalid request body"},
            ), bad
        upload = client.post(
            "/lipsync/generate-with-media",
            files={"video": ("v.mp4", b"x"), "audio": ("a.wav", b"y")},
            data={"webhook_url": "javascript:alert(1)"},
        )
        assert (upload.status_code, upload.json()) == (400, {"error": "invalid request body"})
        listed = client.get("/lipsync/requests").json()
    assert listed["pagination"]["total"] == 0  # nothing was created, no quota spent


def test_a_webhook_url_at_a_private_literal_address_is_refused_at_creation(
    api_server: ApiServer,
) -> None:
    """Refused when the request is made, as a media URL at such an address is, rather than
    accepted and refused at every delivery attempt; on both routes, nothing created."""
    key = new_key(api_server.server.data_dir, "private-webhook")
    secret_for(api_server.server.data_dir, key.account_id)
    refused = (400, {"error": "url not allowed"})
    with api_server.client(key) as client:
        for url in (
            "http://127.0.0.1:9/h",
            "http://[::1]/h",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.7/h",
            "http://[64:ff9b::a9fe:a9fe]/h",  # NAT64 form of the metadata address
        ):
            body = {"inputs": EXAMPLE_INPUTS, "webhook_url": url}
            response = client.post("/lipsync/generate", json=body)
            assert (response.status_code, response.json()) == refused, url
            upload = client.post(
                "/lipsync/generate-with-media",
                files={"video": ("v.mp4", b"x"), "audio": ("a.wav", b"y")},
                data={"webhook_url": url},
            )
            assert (upload.status_code, upload.json()) == refused, url
        public = {"inputs": EXAMPLE_INPUTS, "webhook_url": "https://hooks.example.com/h"}
        assert client.post("/lipsync/generate", json=public).status_code == 200
        assert client.get("/lipsync/requests").json()["pagination"]["total"] == 1
