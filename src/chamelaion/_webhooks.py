"""Checking that a webhook really comes from your Chamelaion server.

The server signs each delivery with your account's webhook secret (``chamelaion keys
webhook-secret``): ``Chamelaion-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
Verify against the raw body bytes, before parsing them: re-serialised JSON would not match.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from ._exceptions import WebhookVerificationError
from .types.lipsync_request import LipsyncRequest

__all__ = ["DEFAULT_TOLERANCE", "SIGNATURE_HEADER", "verify_webhook"]

SIGNATURE_HEADER = "Chamelaion-Signature"
DEFAULT_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may lie from now: an older one may be a replay."""


def verify_webhook(
    payload: bytes | str,
    signature: str | None,
    secret: str,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> LipsyncRequest:
    """Check a delivery's ``Chamelaion-Signature`` header and return the request object it
    carries. Raises ``WebhookVerificationError`` when the header is missing or malformed, the
    signature does not match, or the timestamp is more than ``tolerance`` seconds from ``now``
    (``None``: do not check the age).

    ::

        request = chamelaion.verify_webhook(
            raw_body, headers.get("Chamelaion-Signature"), os.environ["CHAMELAION_WEBHOOK_SECRET"]
        )
        if request.status == "completed": ...
    """
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    if not signature:
        raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in signature.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookVerificationError(f"malformed {SIGNATURE_HEADER} header")
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), c.encode()) for c in candidates):
        raise WebhookVerificationError("signature does not match")
    current = time.time() if now is None else now
    if tolerance is not None and abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("timestamp outside the tolerance (a replay?)")
    return LipsyncRequest.model_validate_json(body)
