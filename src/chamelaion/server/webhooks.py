"""Webhooks: when a job finishes, POST its request object to the client's `webhook_url`.

A delivery is owed from the moment the job's final status commits: `record_delivery` is a
"job finished" hook (see `queue/jobs.py`), so the row saying so is written in that same
transaction.
Sending is at least once: any worker process's `WebhookSender` claims a due delivery with one
conditional UPDATE (as jobs are claimed), holds it for a lease, and records the outcome only
while it still holds it. A sender that dies mid-send loses its lease and the delivery is sent
again; a receiver answering anything but 2xx is retried with exponential backoff until the
retry window (24 h by default) after the job finished is over. Rows live in the database, so
deliveries survive restarts and are shared by every worker of a scale-out.

The body is the request object exactly as `GET /v1/lipsync/requests/{id}` returns it, rendered
at each attempt (so a retry carries a fresh output link). It is signed like Stripe's webhooks:
`Chamelaion-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the account's
webhook secret>`; the timestamp lets receivers refuse replays of old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.config import Settings
from chamelaion.server.fetch import FetchError, guarded_client
from chamelaion.server.models import (
    Account,
    DeliveryStatus,
    LipsyncJob,
    WebhookDelivery,
    utcnow,
)
from chamelaion.server.presenters import PUBLIC_COLUMNS, present_job
from chamelaion.server.storage import OutputSigner

log = logging.getLogger("chamelaion.webhooks")

SIGNATURE_HEADER = "Chamelaion-Signature"
DELIVERY_HEADER = "Chamelaion-Delivery"  # the delivery's id: the same on every retry of it
SECRET_MARK = "whsec_"
USER_AGENT = "chamelaion-webhook/1"
IDLE_POLL_SECONDS = 1.0


def new_secret() -> str:
    return SECRET_MARK + secrets.token_urlsafe(32)


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The `Chamelaion-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def can_sign_webhooks(session: Session, account_id: str) -> bool:
    """Whether the account has a webhook secret (a job may only ask for a webhook then)."""
    secret = session.scalar(select(Account.webhook_secret).where(Account.id == account_id))
    return secret is not None


def record_delivery(session: Session, job_id: str) -> None:
    """The "job finished" hook for webhooks: owe a delivery if the job asked for one."""
    url = session.scalar(select(LipsyncJob.webhook_url).where(LipsyncJob.id == job_id))
    if url is not None:
        session.add(WebhookDelivery(request_id=job_id, url=url))


def backoff(attempts: int, settings: Settings) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: doubling, capped."""
    base = settings.webhook_retry_base_seconds
    return timedelta(seconds=min(base * 2 ** (attempts - 1), settings.webhook_retry_max_seconds))


@dataclass(frozen=True)
class _Claimed:
    id: str
    request_id: str
    url: str
    attempts: int  # including this one
    created_at: datetime


@dataclass(frozen=True)
class _Outgoing:
    body: bytes
    secret: str


class WebhookSender:
    """Claims and sends due deliveries, one at a time, until told to stop."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], sender_id: str) -> None:
        self._settings = settings
        self._sessions = sessions
        self._sender_id = sender_id
        self._signer = OutputSigner(settings.signing_key(), settings.output_url_ttl_seconds)
        self._base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        self._lease = timedelta(seconds=3 * settings.webhook_timeout_seconds)
        self.wake = threading.Event()  # set when a delivery may have become due

    def run_forever(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                sent = self.send_one()
            except Exception:  # e.g. the database is briefly unreachable: try again shortly
                log.exception("webhook sender failed; retrying")
                sent = False
            if not sent:
                self.wake.wait(IDLE_POLL_SECONDS)
                self.wake.clear()

    def start(self, stopping: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run_forever, args=(stopping,), name="chamelaion-webhooks", daemon=True
        )
        thread.start()
        return thread

    def send_one(self) -> bool:
        """Send the oldest due delivery, if any; whether there was one."""
        claimed = self._claim()
        if claimed is None:
            return False
        outgoing = self._render(claimed.request_id)
        if outgoing is None:
            self._finish(claimed, DeliveryStatus.GAVE_UP, "the request no longer exists")
            return True
        error = self._post(claimed, outgoing)
        if error is None:
            self._finish(claimed, DeliveryStatus.DELIVERED, None)
            log.info("webhook %s for request %s delivered", claimed.id, claimed.request_id)
            return True
        retry_at = utcnow() + backoff(claimed.attempts, self._settings)
        window = timedelta(seconds=self._settings.webhook_retry_window_seconds)
        if retry_at > claimed.created_at + window:
            self._finish(claimed, DeliveryStatus.GAVE_UP, error)
            log.warning("webhook %s: giving up after %d attempts", claimed.id, claimed.attempts)
        else:
            self._release(claimed, error, retry_at)
            log.info("webhook %s: attempt %d failed (%s)", claimed.id, claimed.attempts, error)
        return True

    def _claim(self) -> _Claimed | None:
        now = utcnow()
        due = or_(
            (WebhookDelivery.status == DeliveryStatus.PENDING.value)
            & (WebhookDelivery.next_attempt_at <= now),
            # its sender died mid-send: the lease ran out
            (WebhookDelivery.status == DeliveryStatus.SENDING.value)
            & (WebhookDelivery.lease_until < now),
        )
        with self._sessions() as session:
            for _ in range(5):  # lost a race to another sender: take the next one
                row = session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts)
                    .where(due)
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == row.id,
                        WebhookDelivery.status == row.status,
                        WebhookDelivery.attempts == row.attempts,
                    )
                    .values(
                        status=DeliveryStatus.SENDING.value,
                        sender_id=self._sender_id,
                        lease_until=now + self._lease,
                        attempts=WebhookDelivery.attempts + 1,
                    )
                )
                session.commit()
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    delivery = session.get(WebhookDelivery, row.id, populate_existing=True)
                    assert delivery is not None
                    return _Claimed(
                        delivery.id,
                        delivery.request_id,
                        delivery.url,
                        delivery.attempts,
                        delivery.created_at,
                    )
            return None

    def _render(self, request_id: str) -> _Outgoing | None:
        """The request object and the secret to sign it with; None if the request is gone."""
        with self._sessions() as session:
            job = session.execute(
                select(*PUBLIC_COLUMNS, Account.webhook_secret)
                .join(Account, Account.id == LipsyncJob.account_id)
                .where(LipsyncJob.id == request_id)
            ).first()
        if job is None or job.webhook_secret is None:
            return None
        body = json.dumps(present_job(job, self._base_url, self._signer), separators=(",", ":"))
        return _Outgoing(body.encode(), job.webhook_secret)

    def _post(self, claimed: _Claimed, outgoing: _Outgoing) -> str | None:
        """POST the delivery; None when the receiver took it (2xx), else why not."""
        seconds = self._settings.webhook_timeout_seconds
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(outgoing.secret, int(time.time()), outgoing.body),
            DELIVERY_HEADER: claimed.id,
        }
        try:
            with guarded_client(
                self._settings.allow_private_urls, httpx.Timeout(seconds, pool=5)
            ) as client:
                response = client.post(claimed.url, content=outgoing.body, headers=headers)
        except FetchError as exc:
            return str(exc)
        except httpx.TimeoutException:
            return "timed out"
        except httpx.HTTPError as exc:
            return f"connection failed ({type(exc).__name__})"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _update_held(self, claimed: _Claimed, **values: object) -> None:
        """Record an outcome only while this sender still holds the delivery (else a newer
        attempt owns it, and its outcome is the one that counts)."""
        with self._sessions() as session:
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claimed.id,
                    WebhookDelivery.status == DeliveryStatus.SENDING.value,
                    WebhookDelivery.sender_id == self._sender_id,
                    WebhookDelivery.attempts == claimed.attempts,
                )
                .values(sender_id=None, lease_until=None, **values)
            )
            session.commit()

    def _finish(self, claimed: _Claimed, status: DeliveryStatus, error: str | None) -> None:
        """A final outcome; `last_error` keeps the previous attempt's when this one succeeded."""
        errors = {} if error is None else {"last_error": error}
        self._update_held(claimed, status=status.value, finished_at=utcnow(), **errors)

    def _release(self, claimed: _Claimed, error: str, retry_at: datetime) -> None:
        self._update_held(
            claimed,
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=retry_at,
            last_error=error,
        )
