"""`verify_webhook` against signatures made by the server's own signing code."""

from __future__ import annotations

import json

import pytest

from chamelaion import WebhookVerificationError, verify_webhook
from chamelaion.server.webhooks import new_secret, signature_header

BODY = json.dumps(
    {
        "id": "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8",
        "status": "failed",
        "created_at": "2026-04-07T10:00:00Z",
        "error_message": "failed to fetch video: HTTP 404",
    }
).encode()
NOW = 1_800_000_000


def test_a_server_signature_verifies_and_yields_the_request() -> None:
    secret = new_secret()
    request = verify_webhook(BODY, signature_header(secret, NOW, BODY), secret, now=NOW + 10)
    assert request.status == "failed" and request.error_message == "failed to fetch video: HTTP 404"
    # a str payload (already decoded by a framework) works too
    assert verify_webhook(BODY.decode(), signature_header(secret, NOW, BODY), secret, now=NOW).id


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda body, header, secret: (body + b" ", header, secret), "does not match"),
        (lambda body, header, secret: (body, header, new_secret()), "does not match"),
        (lambda body, header, secret: (body, None, secret), "no Chamelaion-Signature"),
        (lambda body, header, secret: (body, "v1=abc", secret), "malformed"),
        (lambda body, header, secret: (body, header.split(",")[0], secret), "malformed"),
        (
            lambda body, header, secret: (body, header.replace("t=", "t=1"), secret),
            "does not match",  # the timestamp is signed: it cannot be moved
        ),
    ],
)
def test_tampering_is_refused(mutate: object, message: str) -> None:
    secret = new_secret()
    body, header, key = mutate(BODY, signature_header(secret, NOW, BODY), secret)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError, match=message):
        verify_webhook(body, header, key, now=NOW)


def test_an_old_delivery_is_refused_unless_the_age_check_is_off() -> None:
    secret = new_secret()
    header = signature_header(secret, NOW, BODY)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(BODY, header, secret, now=NOW + 301)
    assert verify_webhook(BODY, header, secret, now=NOW + 299).id
    assert verify_webhook(BODY, header, secret, tolerance=None, now=NOW + 10**6).id
