"""Tables: accounts own API keys and lip-sync requests (the jobs)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chamelaion.engine.options import DEFAULT_MODEL, SyncMode

_ResultProcessor = Callable[[Any], Any]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; always gives back UTC-aware ones (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(timezone.utc)

    def result_processor(self, dialect: Dialect, coltype: object) -> _ResultProcessor | None:
        """On SQLite, parse the stored text with the C `fromisoformat` rather than SQLAlchemy's
        regular expression: listing requests reads three times per row, and this was the
        largest single cost of a list call."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def parse(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)

        return parse

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by the client (POST .../cancel or DELETE); final, like the two above


FINISHED_STATUSES = (JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


class InputKind(str, enum.Enum):
    URL = "url"  # video_source/audio_source are URLs the worker fetches
    UPLOAD = "upload"  # the inputs are already under the data dir


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Signs this account's webhook deliveries (`chamelaion keys webhook-secret`). Kept in plain:
    # the server must sign with it, so a hash would not do. None: the account has no webhooks.
    webhook_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApiKey(Base):
    """A key is shown once; only `prefix` (for lookup) and a SHA-256 of the whole key are kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Quota: how many jobs this key may create in its lifetime; None is unlimited.
    max_requests: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requests_used: Mapped[int] = mapped_column(Integer, default=0)
    # Per-key overrides of the service-wide rate limits, in `limits` notation ("60/minute").
    rate_limit_generate: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rate_limit_read: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LipsyncJob(Base):
    """One lip-sync request: its inputs, options, where it is in its life, and its outcome."""

    __tablename__ = "lipsync_requests"
    __table_args__ = (
        Index("ix_lipsync_requests_account_created", "account_id", "created_at"),
        Index("ix_lipsync_requests_account_reference", "account_id", "reference_id", "created_at"),
        Index("ix_lipsync_requests_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    reference_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)

    input_kind: Mapped[str] = mapped_column(String(16))
    video_source: Mapped[str] = mapped_column(Text)
    audio_source: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(32), default=DEFAULT_MODEL)
    sync_mode: Mapped[str] = mapped_column(String(16), default=SyncMode.CUT_OFF.value)
    disable_active_speaker_detection: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the new audio says, if the client sent it, and its language tag as sent.
    transcript: Mapped[str | None] = mapped_column(Text, nullable=True)
    transcript_language: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The face to re-animate, pointed at (`SpeakerPoint`): all three set, or none.
    speaker_frame: Mapped[int | None] = mapped_column(Integer, nullable=True)
    speaker_x: Mapped[float | None] = mapped_column(Float, nullable=True)
    speaker_y: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Where to POST the request object once the job is finished (see `webhooks.py`).
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)

    # Runner bookkeeping: who holds the job and when it last showed signs of life.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the output was deleted at the end of its retention time (the request stays).
    output_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The output's lip sync as `chamelaion eval` measures it (None: not measured).
    sync_offset_frames: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What the engine says a user should know about a completed output, one note a line
    # (e.g. a transcript that did not match the audio and was not used).
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    sync_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Celery queue only: when the job's pending message was published; None while none is
    # (not yet published, or already taken by a worker). The sweep publishes what lacks one.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` and the request it created: a retry with the same key and
    the same request gets that request's id back instead of a second job (see `idempotency`)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of what the request asked for (route, options, URLs or file contents).
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Not a foreign key: the first response stays the answer even if its request is deleted.
    request_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeliveryStatus(str, enum.Enum):
    PENDING = "pending"  # waiting for its next attempt (`next_attempt_at`)
    SENDING = "sending"  # claimed by a sender until `lease_until`
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"  # every attempt in the retry window failed, or the request is gone


class WebhookDelivery(Base):
    """One webhook notification owed to a client: written in the same transaction as the job's
    final status, then sent (and re-sent) by whichever worker claims it first."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("lipsync_requests.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sender_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SegmentStatus(str, enum.Enum):
    QUEUED = "queued"  # waiting for any worker (the job's own, or one with nothing else to do)
    PROCESSING = "processing"  # being rendered by `worker_id`, alive while `heartbeat_at` is
    DONE = "done"  # its file is in the job's work dir (`engine.segments`)


class JobSegment(Base):
    """One segment of a processing job, so several workers can render one job at once: the
    job's own worker analyses it and queues its segments here; it and idle workers claim them,
    each with one conditional UPDATE, and the job's worker joins them once all are done. Rows
    exist only while the job is processing (a "job finished" hook removes them)."""

    __tablename__ = "lipsync_segments"
    __table_args__ = (Index("ix_lipsync_segments_status", "status", "job_id", "index"),)

    job_id: Mapped[str] = mapped_column(
        ForeignKey("lipsync_requests.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.QUEUED.value)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
