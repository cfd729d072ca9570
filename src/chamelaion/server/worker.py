"""A worker process: claim a job, fetch its inputs, run the engine, report the outcome.

The engine is imported here, in the worker, never in the API process. A heartbeat thread keeps
the job's lease fresh and stores the engine's progress; if this process dies, the lease runs
out and the supervisor re-queues the job. A worker whose parent (the API process) dies takes
itself down too, so nothing keeps running a job the next server start will re-queue.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from chamelaion.server.accesslog import configure_logging
from chamelaion.server.config import Settings
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.fetch import FetchError, download
from chamelaion.server.jobs import ClaimedJob, JobStore, OutputSync
from chamelaion.server.models import InputKind
from chamelaion.server.storage import Storage

if TYPE_CHECKING:
    from chamelaion.engine import LipsyncResult

log = logging.getLogger("chamelaion.worker")
IDLE_POLL_SECONDS = 0.25
_PR_SET_PDEATHSIG = 1


class StopRequestedError(Exception):
    """Raised from the progress callback to abandon a job when the worker is told to stop."""


@dataclass
class _Progress:
    fraction: float = 0.0
    stage: str | None = None


@dataclass(frozen=True)
class _Completed:
    sync: OutputSync | None  # None where the output's sync could not be measured


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
        self.store = JobStore(make_session_factory(make_engine(settings.resolved_database_url)))
        self.storage = Storage(settings)
        self.stopping = threading.Event()

    def run_forever(self) -> None:
        while not self.stopping.is_set() and os.getppid() == self.parent_pid:
            try:
                job = self.store.claim(self.worker_id)
            except Exception:  # e.g. the database is briefly unreachable: try again shortly
                log.exception("claiming a job failed; retrying")
                job = None
            if job is None:
                self.stopping.wait(IDLE_POLL_SECONDS)
                continue
            self.run(job)

    def run(self, job: ClaimedJob) -> None:
        log.info("job %s: attempt %d started", job.id, job.attempt)
        progress = _Progress()
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, progress, done), daemon=True)
        beat.start()
        try:
            outcome = self._execute(job, progress)
        except StopRequestedError:
            self.store.release(job.id, self.worker_id)
            log.info("job %s: released on shutdown", job.id)
            return
        except Exception:
            log.exception("job %s: unexpected error", job.id)
            outcome = "internal error"
        finally:
            done.set()
            beat.join()
        if isinstance(outcome, _Completed):
            recorded = self.store.complete(
                job.id, self.worker_id, str(self.storage.output_path(job.id)), outcome.sync
            )
        else:
            recorded = self.store.fail(job.id, self.worker_id, outcome)
        if not recorded:
            # Our lease ran out and the job went back to the queue (maybe to another worker,
            # which now owns it and its inputs): leave everything to the new attempt.
            log.warning("job %s: no longer held by this worker; outcome dropped", job.id)
            return
        completed = isinstance(outcome, _Completed)
        log.info("job %s: %s", job.id, "completed" if completed else f"failed: {outcome}")
        self.storage.discard_inputs(job.id)

    def _execute(self, job: ClaimedJob, progress: _Progress) -> _Completed | str:
        """Run the job: its outcome on success, else the message to store as error_message."""
        from chamelaion.engine import (
            EngineError,
            InvalidMediaError,
            LipsyncOptions,
            SyncMode,
            lipsync,
        )
        from chamelaion.engine import Progress as EngineProgress
        from chamelaion.engine.media import probe

        if job.input_kind == InputKind.URL.value:
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
                    )
                except FetchError as exc:
                    return f"failed to fetch {kind}: {exc}"
            for kind, path, wants_video in (("video", video, True), ("audio", audio, False)):
                try:
                    info = probe(path)
                except InvalidMediaError:
                    return f"invalid {kind} file"
                if not (info.has_video if wants_video else info.has_audio):
                    return f"invalid {kind} file"
        else:
            video, audio = Path(job.video_source), Path(job.audio_source)

        def on_progress(report: EngineProgress) -> None:
            progress.fraction, progress.stage = report.fraction, report.stage
            if self.stopping.is_set():
                raise StopRequestedError

        options = LipsyncOptions(
            sync_mode=SyncMode(job.sync_mode),
            model=job.model,
            active_speaker_detection=not job.disable_active_speaker_detection,
        )
        # Render under a name of this attempt's own, then move it into place: if a lease ran
        # out while this worker was still busy, the attempt that took over never shares a file
        # with this one, and a reader only ever sees a whole output.
        final = self.storage.output_path(job.id)
        for leftover in final.parent.glob(f".*{job.id}*"):  # from attempts that were killed
            leftover.unlink(missing_ok=True)
        rendered = final.with_name(f".{job.id}.{self.nonce}.mp4")
        try:
            result = lipsync(video, audio, rendered, options, progress=on_progress)
        except EngineError as exc:
            return str(exc) or "lip-sync failed"
        for note in result.notes:  # e.g. where the largest face stood in for the speaker
            log.info("job %s: %s", job.id, note)
        progress.stage = "scoring"
        sync = _measure_sync(job.id, rendered)
        self._keep_for_studio(job.id, result, rendered, video)
        os.replace(rendered, final)
        return _Completed(sync)

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

    def _heartbeat(self, job_id: str, progress: _Progress, done: threading.Event) -> None:
        interval = min(1.0, self.settings.job_lease_seconds / 4)
        while not done.wait(interval):
            try:
                self.store.heartbeat(job_id, self.worker_id, progress.fraction, progress.stage)
            except Exception:
                log.exception("job %s: heartbeat failed; will retry", job_id)


def _measure_sync(job_id: str, output: Path) -> OutputSync | None:
    """The output's lip sync against its own sound track, as `chamelaion eval` measures it (a
    face-mesh pass over the output: about a tenth of its duration at 512x512), so the request
    object tells the user how well it came out. None if it cannot be measured: the score is
    information about the output, never a reason to fail a job that rendered."""
    from chamelaion.engine import EngineError
    from chamelaion.engine.score import sync_score

    try:
        score = sync_score(output)
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
    worker.run_forever()
