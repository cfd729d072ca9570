"""The job queue, kept to a few verbs so another backend can replace it (issue 6: Celery).

`submit` records a queued job; `claim` hands the oldest queued job to one worker; `heartbeat`,
`complete` and `fail` report back; `cancel` is the client stopping it. Every transition is one
conditional UPDATE (status, and the claiming worker's id), so two workers never run the same
job, and a worker that lost its job (its lease ran out and someone else took it, or the client
cancelled it) cannot overwrite the newer outcome: its next heartbeat tells it to stop. Nothing
here is SQLite-specific; PostgreSQL runs the same statements.

The "job finished" hooks (`FinishedHook`) run inside the transaction of every transition to a
final status, whoever makes it (a worker, stale-job recovery, a cancel): what they write (e.g. a
webhook delivery owed) commits together with the status or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.engine.options import SpeakerPoint
from chamelaion.server.models import JobSegment, JobStatus, LipsyncJob, SegmentStatus, utcnow

INTERRUPTED_TOO_OFTEN = "processing was interrupted {attempts} times; giving up"

FinishedHook = Callable[[Session, str], None]
"""Called with the session and the job's id inside the transaction that moved the job to a
final status (completed, failed or cancelled), before it commits. It must not commit."""


@dataclass(frozen=True)
class OutputSync:
    """The output's lip sync, measured by the worker after rendering (`chamelaion eval`'s
    learned scorer): the offset in frames (positive: the sound is late) and the confidence,
    0 where nothing could be scored (no face, no speech)."""

    offset_frames: int
    confidence: float


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run a job, detached from any session."""

    id: str
    input_kind: str
    video_source: str
    audio_source: str
    sync_mode: str
    model: str
    disable_active_speaker_detection: bool
    transcript: str | None
    transcript_language: str | None
    speaker: SpeakerPoint | None
    attempt: int


def speaker_point(job: LipsyncJob) -> SpeakerPoint | None:
    """The job's speaker point, from its three columns (set together, or not at all)."""
    if job.speaker_frame is None or job.speaker_x is None or job.speaker_y is None:
        return None
    return SpeakerPoint(job.speaker_frame, job.speaker_x, job.speaker_y)


@dataclass(frozen=True)
class ClaimedSegment:
    """A segment of a processing job, taken by one worker to render."""

    job_id: str
    index: int


def forget_segments(session: Session, job_id: str) -> None:
    """A "job finished" hook: a finished job's segments are nobody's to render any more (a
    worker still rendering one learns it from its next segment heartbeat)."""
    session.execute(delete(JobSegment).where(JobSegment.job_id == job_id))


def submit(session: Session, job: LipsyncJob) -> None:
    """Record a new job as queued (in the caller's transaction; runners poll for it)."""
    job.status = JobStatus.QUEUED.value
    session.add(job)


def _oldest_queued(session: Session) -> str | None:
    return session.scalars(
        select(LipsyncJob.id)
        .where(LipsyncJob.status == JobStatus.QUEUED.value)
        .order_by(LipsyncJob.created_at, LipsyncJob.id)
        .limit(1)
    ).first()


class JobStore:
    def __init__(
        self, sessions: sessionmaker[Session], on_finished: Sequence[FinishedHook] = ()
    ) -> None:
        self._sessions = sessions
        self._on_finished = tuple(on_finished)

    def _finished(self, session: Session, job_id: str) -> None:
        for hook in self._on_finished:
            hook(session, job_id)

    def claim(self, worker_id: str, job_id: str | None = None) -> ClaimedJob | None:
        """Take the oldest queued job (or job `job_id`, if it is queued), or None. Safe against
        any number of concurrent workers. Taking a job consumes its queue message, if any."""
        with self._sessions() as session:
            for _ in range(1 if job_id else 5):  # lost a race: another worker took it; next
                candidate = job_id or _oldest_queued(session)
                if candidate is None:
                    return None
                now = utcnow()
                taken = session.execute(
                    update(LipsyncJob)
                    .where(
                        LipsyncJob.id == candidate,
                        LipsyncJob.status == JobStatus.QUEUED.value,
                    )
                    .values(
                        status=JobStatus.PROCESSING.value,
                        worker_id=worker_id,
                        attempts=LipsyncJob.attempts + 1,
                        started_at=now,
                        heartbeat_at=now,
                        progress=0.0,
                        progress_stage=None,
                        enqueued_at=None,
                    )
                )
                session.commit()
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    job = session.get(LipsyncJob, candidate, populate_existing=True)
                    assert job is not None
                    return ClaimedJob(
                        id=job.id,
                        input_kind=job.input_kind,
                        video_source=job.video_source,
                        audio_source=job.audio_source,
                        sync_mode=job.sync_mode,
                        model=job.model,
                        disable_active_speaker_detection=job.disable_active_speaker_detection,
                        transcript=job.transcript,
                        transcript_language=job.transcript_language,
                        speaker=speaker_point(job),
                        attempt=job.attempts,
                    )
            return None

    def status(self, job_id: str) -> str | None:
        """The job's status now; None when there is no such job (any more)."""
        with self._sessions() as session:
            return session.scalar(select(LipsyncJob.status).where(LipsyncJob.id == job_id))

    def _update_held(
        self,
        job_id: str,
        holder: str,
        finishing: bool = False,
        attempt: int | None = None,
        **values: object,
    ) -> bool:
        """Update a job only while `holder` still holds it; False when it no longer does.
        `finishing`: the update gives the job a final status (the hooks run with it).

        With `attempt` (the holder's attempt number), a job that went back to the queue because
        the holder's lease ran out (e.g. the database was unreachable while it rendered, so its
        heartbeats failed) but that no worker has taken since still counts as held: the outcome
        is recorded, and the job is not run a second time for nothing."""
        held_now = and_(
            LipsyncJob.worker_id == holder, LipsyncJob.status == JobStatus.PROCESSING.value
        )
        if attempt is not None:
            held_now = or_(
                held_now,
                and_(
                    LipsyncJob.status == JobStatus.QUEUED.value,
                    LipsyncJob.worker_id.is_(None),
                    LipsyncJob.attempts == attempt,
                ),
            )
            values = {"worker_id": holder, "enqueued_at": None, **values}
        with self._sessions() as session:
            result = session.execute(
                update(LipsyncJob).where(LipsyncJob.id == job_id, held_now).values(**values)
            )
            held = bool(result.rowcount)  # type: ignore[attr-defined]
            if held and finishing:
                self._finished(session, job_id)
            session.commit()
            return held

    def heartbeat(self, job_id: str, worker_id: str, progress: float, stage: str | None) -> bool:
        return self._update_held(
            job_id, worker_id, heartbeat_at=utcnow(), progress=progress, progress_stage=stage
        )

    def complete(
        self,
        job_id: str,
        worker_id: str,
        output_path: str,
        sync: OutputSync | None = None,
        attempt: int | None = None,
        notes: Sequence[str] = (),
    ) -> bool:
        return self._update_held(
            job_id,
            worker_id,
            finishing=True,
            attempt=attempt,
            status=JobStatus.COMPLETED.value,
            finished_at=utcnow(),
            output_path=output_path,
            progress=1.0,
            error_message=None,
            sync_offset_frames=None if sync is None else sync.offset_frames,
            sync_confidence=None if sync is None else sync.confidence,
            notes="\n".join(note.replace("\n", " ") for note in notes) or None,
        )

    def fail(self, job_id: str, worker_id: str, message: str, attempt: int | None = None) -> bool:
        return self._update_held(
            job_id,
            worker_id,
            finishing=True,
            attempt=attempt,
            status=JobStatus.FAILED.value,
            finished_at=utcnow(),
            error_message=message,
        )

    def release(self, job_id: str, worker_id: str) -> bool:
        """Give a job back untouched (worker shutting down): the attempt does not count."""
        return self._update_held(
            job_id,
            worker_id,
            status=JobStatus.QUEUED.value,
            worker_id=None,
            started_at=None,
            heartbeat_at=None,
            attempts=LipsyncJob.attempts - 1,
        )

    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued or processing job: the status it had, or None when it had already
        finished (nothing changes then). A processing job's worker learns it at its next
        heartbeat (its conditional UPDATE no longer matches), stops, and frees its files; a
        queued job's files are the caller's to free."""
        with self._sessions() as session:
            for before in (JobStatus.QUEUED.value, JobStatus.PROCESSING.value):
                result = session.execute(
                    update(LipsyncJob)
                    .where(LipsyncJob.id == job_id, LipsyncJob.status == before)
                    .values(
                        status=JobStatus.CANCELLED.value, finished_at=utcnow(), enqueued_at=None
                    )
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    self._finished(session, job_id)
                    session.commit()
                    return before
            return None

    def recover_stale(self, lease: timedelta, max_attempts: int) -> tuple[int, int]:
        """Jobs whose worker went silent for `lease`: re-queue, or fail after `max_attempts`.

        Returns (requeued, failed). Runs at start and periodically, so no job stays stuck.
        """
        cutoff: datetime = utcnow() - lease
        stale = (
            LipsyncJob.status == JobStatus.PROCESSING.value,
            LipsyncJob.heartbeat_at < cutoff,
        )
        with self._sessions() as session:
            exhausted = session.execute(
                select(LipsyncJob.id, LipsyncJob.attempts).where(
                    *stale, LipsyncJob.attempts >= max_attempts
                )
            ).all()
            failed = 0
            for job_id, attempts in exhausted:
                if session.execute(
                    update(LipsyncJob)
                    .where(LipsyncJob.id == job_id, *stale)
                    .values(
                        status=JobStatus.FAILED.value,
                        finished_at=utcnow(),
                        worker_id=None,
                        error_message=INTERRUPTED_TOO_OFTEN.format(attempts=attempts),
                    )
                ).rowcount:  # type: ignore[attr-defined]
                    failed += 1
                    self._finished(session, job_id)
            requeued = session.execute(
                update(LipsyncJob)
                .where(*stale, LipsyncJob.attempts < max_attempts)
                .values(
                    status=JobStatus.QUEUED.value,
                    worker_id=None,
                    started_at=None,
                    heartbeat_at=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            session.commit()
            return requeued, failed

    # Segments: one job over many workers. The job's holder queues the segments it has not
    # rendered yet; any worker claims one (the holder too), renders it into the job's work dir
    # and marks it done; the holder joins them once none is left. Each step is one conditional
    # UPDATE, like the job's own transitions.

    def queue_segments(self, job_id: str, holder: str, indices: Sequence[int]) -> bool:
        """Offer the job's unrendered segments to every worker, replacing what an earlier
        attempt offered. False (and nothing offered) once the job is no longer `holder`'s."""
        with self._sessions() as session:
            held = session.execute(
                update(LipsyncJob)
                .where(
                    LipsyncJob.id == job_id,
                    LipsyncJob.worker_id == holder,
                    LipsyncJob.status == JobStatus.PROCESSING.value,
                )
                .values(heartbeat_at=utcnow())
            ).rowcount  # type: ignore[attr-defined]
            if not held:
                session.rollback()
                return False
            forget_segments(session, job_id)
            session.add_all(
                JobSegment(job_id=job_id, index=i, status=SegmentStatus.QUEUED.value)
                for i in indices
            )
            session.commit()
            return True

    def claim_segment(self, worker_id: str, job_id: str | None = None) -> ClaimedSegment | None:
        """Take a queued segment of a processing job (of `job_id`, if given; else of the
        oldest job with one), or None."""
        queued = (
            JobSegment.status == SegmentStatus.QUEUED.value,
            LipsyncJob.status == JobStatus.PROCESSING.value,
        )
        with self._sessions() as session:
            for _ in range(5):  # lost a race for one: try the next
                query = (
                    select(JobSegment.job_id, JobSegment.index)
                    .join(LipsyncJob, LipsyncJob.id == JobSegment.job_id)
                    .where(*queued)
                    .order_by(LipsyncJob.created_at, JobSegment.index)
                    .limit(1)
                )
                if job_id is not None:
                    query = query.where(JobSegment.job_id == job_id)
                candidate = session.execute(query).first()
                if candidate is None:
                    return None
                found_job, found_index = candidate
                taken = session.execute(
                    update(JobSegment)
                    .where(
                        JobSegment.job_id == found_job,
                        JobSegment.index == found_index,
                        JobSegment.status == SegmentStatus.QUEUED.value,
                    )
                    .values(
                        status=SegmentStatus.PROCESSING.value,
                        worker_id=worker_id,
                        heartbeat_at=utcnow(),
                    )
                ).rowcount  # type: ignore[attr-defined]
                session.commit()
                if taken:
                    return ClaimedSegment(found_job, found_index)
            return None

    def _update_segment(self, segment: ClaimedSegment, holder: str, **values: object) -> bool:
        with self._sessions() as session:
            result = session.execute(
                update(JobSegment)
                .where(
                    JobSegment.job_id == segment.job_id,
                    JobSegment.index == segment.index,
                    JobSegment.worker_id == holder,
                    JobSegment.status == SegmentStatus.PROCESSING.value,
                )
                .values(**values)
            )
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def segment_heartbeat(self, segment: ClaimedSegment, worker_id: str) -> bool:
        """Keep a segment's claim fresh; False once it is no longer ours (the job finished, was
        given back, or its holder gave up waiting on us)."""
        return self._update_segment(segment, worker_id, heartbeat_at=utcnow())

    def finish_segment(self, segment: ClaimedSegment, worker_id: str) -> bool:
        return self._update_segment(
            segment, worker_id, status=SegmentStatus.DONE.value, heartbeat_at=utcnow()
        )

    def release_segment(self, segment: ClaimedSegment, worker_id: str) -> bool:
        """Give a segment back untouched (the worker is stopping): someone else takes it."""
        return self._update_segment(
            segment, worker_id, status=SegmentStatus.QUEUED.value, worker_id=None
        )

    def take_back_segments(self, job_id: str, lease: timedelta) -> list[int]:
        """Queue again the job's segments whose worker went silent for `lease` (it died: another
        worker, the holder at least, takes them): their indices."""
        with self._sessions() as session:
            taken = session.scalars(
                update(JobSegment)
                .where(
                    JobSegment.job_id == job_id,
                    JobSegment.status == SegmentStatus.PROCESSING.value,
                    JobSegment.heartbeat_at < utcnow() - lease,
                )
                .values(status=SegmentStatus.QUEUED.value, worker_id=None)
                .returning(JobSegment.index)
            ).all()
            session.commit()
            return sorted(taken)

    def segments_left(self, job_id: str) -> int:
        """How many of the job's segments are not done."""
        with self._sessions() as session:
            left = session.scalar(
                select(func.count())
                .select_from(JobSegment)
                .where(
                    JobSegment.job_id == job_id,
                    JobSegment.status != SegmentStatus.DONE.value,
                )
            )
            return int(left or 0)
