"""Celery as the job queue's transport: publishing jobs, and the sweep that no job escapes.

The database stays the source of truth; a Celery message only says "job X may be ready". So
messages may be lost or duplicated without harm: a duplicate finds the job already taken or
finished (claiming is one conditional UPDATE), and the sweep republishes every queued job that
has no live message. That covers an API that died between committing a job and publishing it,
a broker that lost its queue, and a worker killed mid-job (its lease runs out, `recover_stale`
puts the job back, and it is published again) without waiting for Redis's visibility timeout.

A Redis that restarts empty (no persistence, a failover to an empty replica, a flush) loses every
message it held at once. The sweep notices within one sweep: it keeps a mark key in the broker's
Redis, and a mark that is gone means the messages are too, so every queued job is published
again (a job whose message survived after all gets a duplicate, which costs one failed claim).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import redis
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.config import Settings
from chamelaion.server.models import JobStatus, LipsyncJob, utcnow
from chamelaion.server.queue.hooks import job_store

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("chamelaion.dispatch")

RUN_JOB = "chamelaion.run_job"
# "Job X has segments to render": published by the worker holding X (see `celery_app`).
RENDER_SEGMENT = "chamelaion.render_segment"
# A job the API committed moments ago is about to be published by the API itself; the sweep
# leaves it alone that long so the usual case costs one message, not two.
NEW_JOB_GRACE = timedelta(seconds=10)
SWEEP_BATCH = 500
# Under the deployment's Redis key prefix; present while the broker still holds what was
# published to it.
BROKER_MARK = "broker-mark"


def sweep_interval(settings: Settings) -> float:
    """As often as the embedded runner's supervisor checks: a lease is noticed soon after it
    runs out."""
    return min(5.0, settings.job_lease_seconds / 2)


class Dispatcher:
    """Publishes `run_job` messages and records them on the job row (`enqueued_at`)."""

    def __init__(self, celery: Celery, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._celery = celery
        self._sessions = sessions
        self._settings = settings
        self._redis: redis.Redis | None = None

    def _publish(self, job_id: str) -> None:
        self._celery.send_task(RUN_JOB, args=[job_id])

    def enqueue(self, job_id: str) -> None:
        """Publish a job just committed. A broker failure is logged, not raised: the job is
        safely stored, and the sweep publishes it once the broker is back."""
        try:
            self._publish(job_id)
        except Exception:
            log.exception("job %s: publishing failed; the sweep will retry", job_id)
            return
        with self._sessions() as session:
            session.execute(
                update(LipsyncJob)
                .where(
                    LipsyncJob.id == job_id,
                    LipsyncJob.status == JobStatus.QUEUED.value,
                    LipsyncJob.enqueued_at.is_(None),
                )
                .values(enqueued_at=utcnow())
            )
            session.commit()

    def _broker(self) -> redis.Redis:
        if self._redis is None:
            assert self._settings.broker_url
            self._redis = redis.Redis.from_url(
                self._settings.broker_url, socket_connect_timeout=5, socket_timeout=5
            )
        return self._redis

    def _mark_key(self) -> str:
        return f"{self._settings.redis_key_prefix}:{BROKER_MARK}"

    def _forget_lost_messages(self) -> int:
        """If the broker's mark is gone, so are its messages: clear `enqueued_at` of every
        queued job, so this sweep publishes them all again. Returns how many. A broker that
        cannot be reached is left to the publishing, which fails and is retried."""
        try:
            if self._broker().exists(self._mark_key()):
                return 0
        except redis.RedisError:
            return 0
        with self._sessions() as session:
            forgotten = session.execute(
                update(LipsyncJob)
                .where(
                    LipsyncJob.status == JobStatus.QUEUED.value,
                    LipsyncJob.enqueued_at.is_not(None),
                )
                .values(enqueued_at=None)
            ).rowcount  # type: ignore[attr-defined]
            session.commit()
        if forgotten:
            log.warning("the broker lost its messages: publishing %d queued jobs again", forgotten)
        return int(forgotten)

    def _set_mark(self) -> None:
        self._broker().set(self._mark_key(), "1")

    def sweep(self) -> tuple[int, int, int]:
        """Re-queue jobs whose lease ran out, then publish every queued job without a live
        message: (re-queued, failed for good, published).

        Any number of sweepers (one per worker) may run at once: each job is marked with a
        conditional UPDATE before it is published, and only the sweeper whose UPDATE matched
        publishes it. A message is presumed lost once it is older than the broker's visibility
        timeout (a job still waiting behind a long backlog then gets a harmless duplicate).
        """
        settings = self._settings
        requeued, failed = job_store(self._sessions).recover_stale(
            timedelta(seconds=settings.job_lease_seconds), settings.max_attempts
        )
        self._forget_lost_messages()
        now = utcnow()
        queued = LipsyncJob.status == JobStatus.QUEUED.value
        due = or_(
            and_(
                LipsyncJob.enqueued_at.is_(None),
                # a job back from a dead worker is due at once; a new one after the grace
                or_(LipsyncJob.attempts > 0, LipsyncJob.created_at < now - NEW_JOB_GRACE),
            ),
            LipsyncJob.enqueued_at < now - timedelta(seconds=settings.broker_visibility_timeout),
        )
        published = 0
        broker_up = True
        with self._sessions() as session:
            rows = session.execute(
                select(LipsyncJob.id, LipsyncJob.enqueued_at)
                .where(queued, due)
                .order_by(LipsyncJob.created_at)
                .limit(SWEEP_BATCH)
            ).all()
            for job_id, previous in rows:
                unchanged = (
                    LipsyncJob.enqueued_at.is_(None)
                    if previous is None
                    else LipsyncJob.enqueued_at == previous
                )
                marked = session.execute(
                    update(LipsyncJob)
                    .where(LipsyncJob.id == job_id, queued, unchanged)
                    .values(enqueued_at=now)
                )
                session.commit()
                if not marked.rowcount:  # type: ignore[attr-defined]
                    continue  # another sweeper (or the API) published it, or a worker took it
                try:
                    self._publish(job_id)
                except Exception:
                    log.exception("job %s: publishing failed; next sweep retries", job_id)
                    session.execute(
                        update(LipsyncJob)
                        .where(LipsyncJob.id == job_id, LipsyncJob.enqueued_at == now)
                        .values(enqueued_at=previous)
                    )
                    session.commit()
                    broker_up = False
                    break  # the broker is down: leave the rest for the next sweep
                published += 1
        if broker_up:
            # Only once everything forgotten was published again: a sweep that failed half-way
            # leaves the mark unset, and the next one starts over.
            try:
                self._set_mark()
            except redis.RedisError:
                log.warning("the broker mark could not be set; the next sweep tries again")
        if requeued or failed or published:
            log.info("sweep: %d re-queued, %d failed, %d published", requeued, failed, published)
        return requeued, failed, published
