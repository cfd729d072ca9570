"""A worker process: claim a job, fetch its inputs, run the engine, report the outcome.

The engine is imported here, in the worker, never in the API process. A heartbeat thread keeps
the job's lease fresh and stores the engine's progress; if this process dies, the lease runs
out and the supervisor re-queues the job. A worker whose parent (the API process) dies takes
itself down too, so nothing keeps running a job the next server start will re-queue.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from chamelaion.server import errors
from chamelaion.server.accesslog import configure_logging
from chamelaion.server.config import Settings
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.fetch import FetchError, download
from chamelaion.server.models import InputKind, JobStatus
from chamelaion.server.queue.hooks import job_store
from chamelaion.server.queue.jobs import ClaimedJob, ClaimedSegment, OutputSync
from chamelaion.server.storage import Storage
from chamelaion.server.webhooks import WebhookSender

if TYPE_CHECKING:
    from chamelaion.engine import LipsyncOptions, LipsyncResult, ProgressCallback

log = logging.getLogger("chamelaion.worker")
IDLE_POLL_SECONDS = 0.25
# Waits between attempts to record a finished job while the database is unreachable.
RECORD_RETRY_FIRST_SECONDS = 0.5
RECORD_RETRY_MAX_SECONDS = 5.0
# How often a job's worker looks whether the segments other workers render are done.
SEGMENT_POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


# Test-only, never set in a deployment: a worker process with CHAMELAION_TEST_STOP_AT=join in its
# environment stops itself (SIGSTOP) once it has copied a segment into a job's output, with
# =segment once it has drawn a frame of a segment of another worker's job; a test
# (tests/server/test_scaleout.py) then SIGKILLs it at that known point rather than racing a
# kill against a step that takes a fraction of a second.
TEST_STOP_AT = "CHAMELAION_TEST_STOP_AT"


def _test_stop_point(point: str) -> None:
    if os.environ.get(TEST_STOP_AT) == point:
        os.kill(os.getpid(), signal.SIGSTOP)


class StopRequestedError(Exception):
    """Raised at a checkpoint to abandon a job when the worker is told to stop."""


class TimeLimitError(Exception):
    """Raised at a checkpoint once the attempt has run longer than its wall-clock limit."""


TIME_LIMIT_EXCEEDED = "processing took longer than its time limit ({limit:g} s)"
OUT_OF_SPACE = "insufficient storage on the server"


class JobLostError(Exception):
    """Raised at a checkpoint once the job is no longer this worker's: the client cancelled or
    deleted it, or its lease ran out and it went back to the queue."""


# The engine's stage names, as the request object's `stage` calls them.
_STAGES = {"analysis": "analysing", "render": "rendering"}
# Share of the job's progress the engine's own progress covers; scoring the output is the rest.
_ENGINE_SHARE = 0.9


@dataclass
class _Attempt:
    """What the threads of one attempt at a job share: its progress for the heartbeat to
    store, and the heartbeat's finding that the job is no longer ours."""

    fraction: float = 0.0
    stage: str | None = None
    lost: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    time_limit: float | None = None  # seconds from `started`; set once the inputs are probed

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class _Completed:
    sync: OutputSync | None  # None where the output's sync could not be measured
    notes: tuple[str, ...] = ()  # the engine's, for the request object


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL us when the API process dies (a SIGKILLed parent cannot tell us)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the idle loop's parent check still ends us, between jobs
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class Worker:
    def __init__(self, settings: Settings, parent_pid: int) -> None:
        self.settings = settings
        self.parent_pid = parent_pid
        self.nonce = uuid.uuid4().hex[:8]
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{self.nonce}"
        sessions = make_session_factory(
            make_engine(settings.resolved_database_url, settings.database_lock_timeout_seconds)
        )
        self.store = job_store(sessions)
        self.storage = Storage(settings)
        self.stopping = threading.Event()
        self.webhooks = WebhookSender(settings, sessions, self.worker_id)

    def start_webhooks(self) -> None:
        """Send webhook deliveries from a thread of this process until it stops: every worker
        process does, so deliveries keep flowing while jobs run, and with any number of workers
        (each delivery is claimed by exactly one of them at a time)."""
        self.webhooks.start(self.stopping)

    def run_forever(self) -> None:
        while not self.stopping.is_set() and os.getppid() == self.parent_pid:
            try:
                job = self.store.claim(self.worker_id)
            except Exception:  # e.g. the database is briefly unreachable: try again shortly
                log.exception("claiming a job failed; retrying")
                job = None
            if job is None:
                # Nothing queued: help with the segments of a job another worker holds.
                try:
                    segment = self.store.claim_segment(self.worker_id)
                except Exception:
                    log.exception("claiming a segment failed; retrying")
                    segment = None
                if segment is not None:
                    self.help(segment)
                else:
                    self.stopping.wait(IDLE_POLL_SECONDS)
                continue
            self.run(job)

    def run(self, job: ClaimedJob) -> None:
        log.info("job %s: attempt %d started", job.id, job.attempt)
        attempt = _Attempt()
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, attempt, done), daemon=True)
        beat.start()
        try:
            outcome = self._execute(job, attempt)
        except StopRequestedError:
            self.store.release(job.id, self.worker_id)
            log.info("job %s: released on shutdown", job.id)
            return
        except JobLostError:
            self._let_go(job.id)
            return
        except TimeLimitError as exc:
            outcome = str(exc)
        except Exception as exc:
            if self._stopped_by_client(job.id):
                # A delete removes the job's files at once, under the engine still using them:
                # it fails on a missing file before the heartbeat says why. No error: a stop.
                self._let_go(job.id)
                return
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                log.error("job %s: the disk is full", job.id)
                outcome = OUT_OF_SPACE
            else:
                log.exception("job %s: unexpected error", job.id)
                outcome = "internal error"
        finally:
            done.set()
            beat.join()
            self._rendering_path(job.id).unlink(missing_ok=True)
        recorded = self._record(job, outcome)
        if recorded is None:
            return  # told to stop before the database came back: the lease hands the job on
        if not recorded:
            self._let_go(job.id)
            return
        self.webhooks.wake.set()  # the job's delivery, if it has one, is due now
        completed = isinstance(outcome, _Completed)
        log.info("job %s: %s", job.id, "completed" if completed else f"failed: {outcome}")
        self.storage.discard_inputs(job.id)

    def _record(self, job: ClaimedJob, outcome: _Completed | str) -> bool | None:
        """Store the outcome: True if stored, False if the job is no longer ours, None if the
        worker was told to stop while the database was unreachable.

        A database that cannot be reached is waited for (with Celery, before the message is
        acknowledged): an output rendered during an outage is recorded once it is back, even if
        the lease ran out meanwhile, as long as no other worker has taken the job since."""
        delay = RECORD_RETRY_FIRST_SECONDS
        while True:
            try:
                if isinstance(outcome, _Completed):
                    output = str(self.storage.output_path(job.id))
                    return self.store.complete(
                        job.id,
                        self.worker_id,
                        output,
                        outcome.sync,
                        attempt=job.attempt,
                        notes=outcome.notes,
                    )
                return self.store.fail(job.id, self.worker_id, outcome, attempt=job.attempt)
            except Exception:
                log.exception("job %s: recording its outcome failed; retrying", job.id)
            if self.stopping.wait(delay):
                return None
            delay = min(delay * 2, RECORD_RETRY_MAX_SECONDS)

    def _let_go(self, job_id: str) -> None:
        """The job stopped being ours mid-way. If the client cancelled or deleted it, nothing
        will ever use its files again: free them. Otherwise our lease ran out and the job went
        back to the queue (maybe to another worker, which now owns its inputs): leave them.
        This attempt's own draft of the output goes either way, before the log line says the
        files are freed (`run` removes it again on every path; here it must go first)."""
        self._rendering_path(job_id).unlink(missing_ok=True)
        status = self.store.status(job_id)
        if status in (None, JobStatus.CANCELLED.value):
            self.storage.discard_inputs(job_id)
            self.storage.discard_output(job_id)
            log.info("job %s: %s; stopped and its files freed", job_id, status or "deleted")
        else:
            log.warning("job %s: no longer held by this worker; outcome dropped", job_id)

    def _stopped_by_client(self, job_id: str) -> bool:
        """Whether the client has cancelled or deleted the job; False when the database cannot
        say (the failure is then handled as the error it seemed)."""
        try:
            return self.store.status(job_id) in (None, JobStatus.CANCELLED.value)
        except Exception:
            log.exception("job %s: its status could not be read", job_id)
            return False

    def _checkpoint(self, attempt: _Attempt) -> None:
        """Where a running job can be given up: called between the steps of a job and at every
        progress report of the engine and of downloads (several times a second)."""
        if self.stopping.is_set():
            raise StopRequestedError
        if attempt.lost.is_set():
            raise JobLostError
        if attempt.time_limit is not None and attempt.elapsed() > attempt.time_limit:
            raise TimeLimitError(TIME_LIMIT_EXCEEDED.format(limit=round(attempt.time_limit, 1)))

    def _rendering_path(self, job_id: str) -> Path:
        """This attempt's own name for the output it renders (see `_execute`)."""
        return self.storage.output_path(job_id).with_name(f".{job_id}.{self.nonce}.mp4")

    def _execute(self, job: ClaimedJob, attempt: _Attempt) -> _Completed | str:
        """Run the job: its outcome on success, else the message to store as error_message."""
        from chamelaion.engine import (
            EngineError,
            InvalidMediaError,
            LipsyncOptions,
            SyncMode,
        )
        from chamelaion.engine import Progress as EngineProgress
        from chamelaion.engine.media import probe
        from chamelaion.engine.options import DEFAULT_TRANSCRIPT_LANGUAGE

        if job.input_kind == InputKind.URL.value:
            attempt.stage = "fetching"
            directory = self.storage.input_dir(job.id)
            directory.mkdir(parents=True, exist_ok=True)
            video, audio = directory / "video", directory / "audio"
            for kind, url, path in (
                ("video", job.video_source, video),
                ("audio", job.audio_source, audio),
            ):
                try:
                    download(
                        url,
                        path,
                        self.settings.max_fetch_bytes,
                        self.settings.fetch_connect_timeout,
                        self.settings.fetch_read_timeout,
                        self.settings.allow_private_urls,
                        total_timeout=self.settings.fetch_total_timeout,
                        checkpoint=lambda: self._checkpoint(attempt),
                    )
                except FetchError as exc:
                    return errors.FETCH_FAILED.format(kind=kind, reason=exc)
        else:
            video, audio = Path(job.video_source), Path(job.audio_source)
        durations = []
        for kind, path, wants_video in (("video", video, True), ("audio", audio, False)):
            try:
                info = probe(path)
            except InvalidMediaError:
                return f"invalid {kind} file"
            if not (info.has_video if wants_video else info.has_audio):
                return f"invalid {kind} file"
            durations.append(info.duration)
        # The wall-clock limit, known now that the media's length is: from the attempt's start.
        attempt.time_limit = (
            self.settings.job_time_limit_seconds
            + self.settings.job_time_limit_per_media_second * max(durations)
        )

        def on_progress(report: EngineProgress) -> None:
            attempt.fraction = _ENGINE_SHARE * report.fraction
            attempt.stage = _STAGES.get(report.stage, report.stage)
            self._checkpoint(attempt)

        options = LipsyncOptions(
            sync_mode=SyncMode(job.sync_mode),
            model=job.model,
            active_speaker_detection=not job.disable_active_speaker_detection,
            transcript=job.transcript,
            transcript_language=job.transcript_language or DEFAULT_TRANSCRIPT_LANGUAGE,
            speaker=job.speaker,
        )
        # Render under a name of this attempt's own, then move it into place: if a lease ran
        # out while this worker was still busy, the attempt that took over never shares a file
        # with this one, and a reader only ever sees a whole output.
        final = self.storage.output_path(job.id)
        for leftover in final.parent.glob(f".*{job.id}*"):  # from attempts that were killed
            leftover.unlink(missing_ok=True)
        rendered = self._rendering_path(job.id)
        self._checkpoint(attempt)
        try:
            result = self._render(job.id, video, audio, rendered, options, on_progress)
        except EngineError as exc:
            return str(exc) or "lip-sync failed"
        for note in result.notes:  # e.g. where the largest face stood in for the speaker
            log.info("job %s: %s", job.id, note)
        attempt.fraction, attempt.stage = _ENGINE_SHARE, "scoring"

        def on_scored_frame(done: int, total: int) -> None:
            attempt.fraction = _ENGINE_SHARE + (1 - _ENGINE_SHARE) * min(1.0, done / max(1, total))
            self._checkpoint(attempt)  # a cancel is noticed while scoring too

        sync = _measure_sync(job.id, rendered, on_scored_frame)
        self._keep_for_studio(job.id, result, rendered, video)
        self._checkpoint(attempt)
        os.replace(rendered, final)
        return _Completed(sync, result.notes)

    def _render(
        self,
        job_id: str,
        video: Path,
        audio: Path,
        rendered: Path,
        options: LipsyncOptions,
        progress: ProgressCallback,
    ) -> LipsyncResult:
        """Run the engine in segments kept in the job's work dir, shared with any worker that
        is free (`help`): the analysis here, then the segments not rendered yet are queued,
        this worker encodes the audio meanwhile and then renders segments too until none is
        left, waiting only on those another worker is still rendering (one that goes silent is
        taken back), and joins them. An attempt after one that died finds the analysis, the
        audio and the finished segments, and does the rest. A database that cannot be reached
        stops the sharing, never the render: this worker then renders what is missing alone
        (the work dir's manifest, not the queue, says what is)."""
        from chamelaion.engine import Progress as EngineProgress
        from chamelaion.engine.pipeline import SegmentedJob

        started = time.monotonic()
        job = SegmentedJob.open(
            video,
            audio,
            self.storage.work_dir(job_id),
            options,
            self.settings.segment_seconds,
            progress,
            self.job_cores(),
        )
        missing = job.missing()
        log.info(
            "job %s: analysed in %.1f s; %d of %d segments to render, faces drawn on %d threads",
            job_id,
            time.monotonic() - started,
            len(missing),
            len(job.segments),
            job.cores,
        )
        if len(missing) < len(job.segments):
            log.info(
                "job %s: resuming: %d of %d segments already rendered",
                job_id,
                len(job.segments) - len(missing),
                len(job.segments),
            )
        alone = not self._share_segments(job_id, [s.index for s in missing])
        if job.work.audio() is None:
            # Here, while other workers take the segments just queued, not in the join: the
            # join then only copies packets, and the job's latency does not end with it.
            encoding = time.monotonic()
            job.encode_audio(by=self.worker_id)
            log.info("job %s: audio encoded in %.1f s", job_id, time.monotonic() - encoding)
        lease = timedelta(seconds=self.settings.job_lease_seconds)
        total = len(job.plan.plan)
        while not alone:
            try:
                claimed = self.store.claim_segment(self.worker_id, job_id)
                if claimed is not None:
                    job.render(job.segments[claimed.index], by=self.worker_id)
                    self.store.finish_segment(claimed, self.worker_id)
                    continue
                taken = self.store.take_back_segments(job_id, lease)
                if taken:
                    log.warning(
                        "job %s: segments %s taken back from a silent worker",
                        job_id,
                        ", ".join(map(str, taken)),
                    )
                left = self.store.segments_left(job_id)
            except SQLAlchemyError:
                self._unreachable(job_id)
                alone = True
                continue
            if left == 0:
                if job.missing():  # the rows went with the job: cancelled, deleted, taken over
                    raise JobLostError
                break
            # Others are rendering the last segments: report their progress (which also
            # checks whether to stop), and look again shortly.
            done = sum(job.segments[i].frames for i in job.work.finished())
            progress(EngineProgress("render", done, total, 0.0))
            self.stopping.wait(SEGMENT_POLL_SECONDS)
        for segment in job.missing() if alone else ():
            job.render(segment, by=self.worker_id)
        finished = job.work.finished()
        mine = sum(1 for s in missing if finished[s.index]["by"] == self.worker_id)
        log.info(
            "job %s: %d segments: %d rendered by this worker, %d by others, %d before; joining",
            job_id,
            len(job.segments),
            mine,
            len(missing) - mine,
            len(job.segments) - len(missing),
        )

        def joined(_count: int) -> None:
            # The join's checkpoint: a cancel or a stop is honoured while it runs too.
            progress(EngineProgress("render", total, total, 0.0))
            _test_stop_point("join")

        result = job.join(rendered, joined)
        log.info("job %s: joined", job_id)
        return result

    def _share_segments(self, job_id: str, indices: list[int]) -> bool:
        """Queue the job's unrendered segments for every worker: True if they are, False if the
        database cannot be reached (this worker then renders them alone: the engine's work is
        on disk, and an outage must not stop a render, only its sharing)."""
        try:
            shared = self.store.queue_segments(job_id, self.worker_id, indices)
        except SQLAlchemyError:
            self._unreachable(job_id)
            return False
        if not shared:
            raise JobLostError
        self.announce_segments(job_id, len(indices))
        return True

    def _unreachable(self, job_id: str) -> None:
        log.warning("job %s: the segment queue is unreachable; rendering the rest alone", job_id)

    def job_cores(self) -> int:
        """Threads a job's render draws on (`Settings.job_cores`): by default this machine's
        share for one engine process, the cores this process may use over the processes
        running jobs beside it, as every one of them may be busy at once."""
        from chamelaion.engine.pipeline import available_cores

        if self.settings.job_cores is not None:
            return self.settings.job_cores
        return max(1, available_cores() // max(1, self.settings.workers))

    def announce_segments(self, job_id: str, count: int) -> None:
        """Tell other workers a job has `count` segments to render. The embedded runner's
        workers look for segments whenever they are idle, so this says nothing; the Celery
        worker publishes a message for each (see `celery_app`)."""

    def help(self, segment: ClaimedSegment) -> None:
        """Render one segment of a job another worker holds, keeping the claim fresh; given back
        if this worker stops, dropped if the job stopped needing it, left to go stale (and be
        taken back by the job's worker) if it failed."""
        from chamelaion.engine import Progress as EngineProgress
        from chamelaion.engine.pipeline import SegmentedJob

        attempt = _Attempt()
        done = threading.Event()
        beat = threading.Thread(
            target=self._segment_heartbeat, args=(segment, attempt, done), daemon=True
        )
        beat.start()

        def on_progress(_report: EngineProgress) -> None:
            self._checkpoint(attempt)
            _test_stop_point("segment")

        try:
            job = SegmentedJob.attach(
                self.storage.work_dir(segment.job_id), on_progress, self.job_cores()
            )
            job.render(job.segments[segment.index], by=self.worker_id)
        except StopRequestedError:
            self.store.release_segment(segment, self.worker_id)
            return
        except JobLostError:
            log.info("job %s: segment %d no longer needed", segment.job_id, segment.index)
            return
        except Exception:
            if not self.store.segment_heartbeat(segment, self.worker_id):
                # The job ended meanwhile (its files went with it): nothing went wrong here.
                log.info("job %s: segment %d no longer needed", segment.job_id, segment.index)
                return
            # Not given back at once: a segment that fails here would fail again at once, on
            # and on. Its claim goes stale, and the job's worker takes it back after a lease
            # (and fails the job with the error if it fails there too).
            log.exception(
                "job %s: segment %d failed; left for the job's worker",
                segment.job_id,
                segment.index,
            )
            return
        finally:
            done.set()
            beat.join()
        try:
            finished = self.store.finish_segment(segment, self.worker_id)
        except Exception:  # its claim goes stale; the job's worker renders it again
            log.exception("job %s: segment %d not recorded", segment.job_id, segment.index)
            return
        if finished:
            log.info("job %s: segment %d rendered", segment.job_id, segment.index)
        else:
            log.info("job %s: segment %d no longer needed", segment.job_id, segment.index)

    def _segment_heartbeat(
        self, segment: ClaimedSegment, attempt: _Attempt, done: threading.Event
    ) -> None:
        interval = min(1.0, self.settings.job_lease_seconds / 4)
        while not done.wait(interval):
            try:
                held = self.store.segment_heartbeat(segment, self.worker_id)
            except Exception:
                log.exception("job %s: segment heartbeat failed; will retry", segment.job_id)
                continue
            if not held:
                attempt.lost.set()
                return

    def _keep_for_studio(
        self, job_id: str, result: LipsyncResult, rendered: Path, video: Path
    ) -> None:
        """The output's mouth track and the source video, kept beside the output for the
        Studio to show. Like the sync score they are information about an output that rendered,
        never a reason to fail it: a failure is logged, and the Studio says they are missing."""
        from chamelaion.server.tracks import mouth_track, write_track

        try:
            track = mouth_track(float(result.fps), result.mouth_opening, rendered)
            if track is not None:
                write_track(self.storage.mouth_path(job_id), track)
            # Linked, not moved: if our lease ran out, the attempt that took over reads it.
            self.storage.keep_source(job_id, video)
        except OSError:
            log.exception("job %s: mouth track or source not kept", job_id)

    def _heartbeat(self, job_id: str, attempt: _Attempt, done: threading.Event) -> None:
        """Keep the lease fresh and store the progress, about once a second; a heartbeat that
        no longer matches (cancelled, deleted, or taken over) tells the job to stop."""
        interval = min(1.0, self.settings.job_lease_seconds / 4)
        while not done.wait(interval):
            try:
                held = self.store.heartbeat(job_id, self.worker_id, attempt.fraction, attempt.stage)
            except Exception:
                log.exception("job %s: heartbeat failed; will retry", job_id)
                continue
            if not held:
                attempt.lost.set()
                return


def _measure_sync(
    job_id: str, output: Path, on_frame: Callable[[int, int], None] | None = None
) -> OutputSync | None:
    """The output's lip sync against its own sound track, as `chamelaion eval` measures it (a
    face-mesh pass over the output: about a tenth of its duration at 512x512), so the request
    object tells the user how well it came out. None if it cannot be measured: the score is
    information about the output, never a reason to fail a job that rendered. `on_frame` is
    called per frame of that pass (progress, and the worker's checkpoint)."""
    from chamelaion.engine import EngineError
    from chamelaion.engine.score import sync_score

    try:
        score = sync_score(output, on_frame=on_frame)
    except EngineError as exc:
        log.warning("job %s: output sync not measured: %s", job_id, exc)
        return None
    if score.note is not None:
        log.info("job %s: output sync confidence 0: %s", job_id, score.note)
    return OutputSync(score.offset_frames, score.confidence)


def worker_main(settings_json: str, parent_pid: int) -> None:
    """Entry point of a spawned worker process."""
    _die_with_parent(parent_pid)
    settings = Settings.model_validate_json(settings_json)
    configure_logging()
    worker = Worker(settings, parent_pid)

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the API, which stops us
    worker.start_webhooks()
    worker.run_forever()
