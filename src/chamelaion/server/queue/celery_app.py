"""The Celery app: the `run_job` and `render_segment` tasks, and the sweep each worker runs.

`chamelaion worker` starts a prefork worker on `create_celery(settings)`; the module attribute
`app` (settings from the environment) is there for Celery's own tools, e.g.
`celery -A chamelaion.server.queue.celery_app flower` or `... inspect active`.

Delivery is at least once (late acks; a message whose worker died is handed out again), and
the task makes that exactly once per job: it claims the job through the same `JobStore` as the
embedded runner, so a message for a job that finished is a no-op, and one for a job another
worker holds (its heartbeat keeps the lease fresh for as long as the engine runs, however long
that is) is retried later rather than run a second time or dropped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from celery import Celery, Task, bootsteps
from celery.signals import worker_process_init

from chamelaion.server.config import Settings
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.models import JobStatus
from chamelaion.server.queue.dispatch import RENDER_SEGMENT, RUN_JOB, Dispatcher, sweep_interval
from chamelaion.server.queue.worker import Worker, _die_with_parent
from chamelaion.server.reaper import Reaper

log = logging.getLogger("chamelaion.celery")

QUEUE_NAME = "chamelaion"
# When the database itself is unreachable, try the message again after this long.
DATABASE_RETRY_SECONDS = 5.0


def create_celery(settings: Settings) -> Celery:
    """A Celery app on `settings`' broker; API and workers must build it from the same values
    (the key prefix and queue name decide where messages go)."""
    if not settings.broker_url:
        raise ValueError("the Celery queue needs CHAMELAION_BROKER_URL")
    visibility = settings.broker_visibility_timeout
    app = Celery("chamelaion", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility,
            "global_keyprefix": f"{settings.redis_key_prefix}:",
            # Check for expired unacknowledged messages every few seconds (kombu's default is
            # every 100 s), so a lowered visibility timeout takes effect promptly.
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,  # an unreachable broker fails a publish, not hangs it
        },
        task_default_queue=QUEUE_NAME,
        task_acks_late=True,  # ack after the job, so a worker's death hands the job out again
        task_reject_on_worker_lost=True,  # a killed pool process: requeue, not "failed"
        task_ignore_result=True,  # outcomes live in the database
        worker_prefetch_multiplier=1,  # a busy worker does not sit on jobs another could run
        worker_send_task_events=True,  # for Flower and `celery events`
        task_send_sent_event=True,
        enable_utc=True,
    )
    app.chamelaion_settings = settings  # for the sweep step, which Celery constructs itself
    global _pool_settings, _pool_app
    _pool_settings = settings  # for the pool processes, forked from this one
    _pool_app = app

    # Celery ships no type information: its decorator returns an untyped task, so mypy
    # cannot see through it (the function itself is typed).
    @app.task(name=RUN_JOB, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run_job(task: Task, job_id: str) -> str:
        return _run_job(task, settings, job_id)

    @app.task(name=RENDER_SEGMENT)  # type: ignore[untyped-decorator]  # as above
    def render_segment(job_id: str) -> str:
        return _render_segment(settings, job_id)

    app.steps["worker"].add(SweepStep)
    return app


@dataclass
class _ProcessContext:
    """Per pool process: made after the fork, so no database connection is ever shared."""

    pid: int
    worker: Worker


_context: _ProcessContext | None = None
_pool_settings: Settings | None = None
_pool_app: Celery | None = None


class _CeleryWorker(Worker):
    """A worker whose job's segments are offered to the other Celery workers by message: one
    `render_segment` per segment beyond the one this worker starts on itself. A message that
    finds nothing left to claim (the job's worker got there first) does nothing."""

    def announce_segments(self, job_id: str, count: int) -> None:
        if _pool_app is None:
            return
        for _ in range(count - 1):
            try:
                _pool_app.send_task(RENDER_SEGMENT, args=[job_id])
            except Exception:  # the broker is down: this worker renders them all itself
                log.exception("job %s: offering its segments failed", job_id)
                return


def _process_context(settings: Settings) -> _ProcessContext:
    global _context
    if _context is None or _context.pid != os.getpid():
        _context = _ProcessContext(
            pid=os.getpid(),
            worker=_CeleryWorker(settings, os.getppid()),
        )
        _context.worker.start_webhooks()
    return _context


def _render_segment(settings: Settings, job_id: str) -> str:
    """Render one queued segment of `job_id`, if one is still queued. At most once per message
    and harmless when lost: the job's own worker renders whatever nobody claimed."""
    worker = _process_context(settings).worker
    segment = worker.store.claim_segment(worker.worker_id, job_id)
    if segment is None:
        return "nothing left"
    worker.help(segment)
    return f"segment {segment.index}"


def _run_job(task: Task, settings: Settings, job_id: str) -> str:
    context = _process_context(settings)
    worker = context.worker
    try:
        job = worker.store.claim(worker.worker_id, job_id)
        status = None if job is not None else worker.store.status(job_id)
    except Exception as exc:  # the database is unreachable: keep the message, try again
        raise task.retry(exc=exc, countdown=DATABASE_RETRY_SECONDS) from exc
    if job is None:
        if status in (JobStatus.QUEUED.value, JobStatus.PROCESSING.value):
            # Another worker holds it (e.g. this message came back after the visibility
            # timeout while the job still runs). If that worker dies, its lease runs out and
            # the job is queued again; look then.
            log.info("job %s: held by another worker; retrying later", job_id)
            raise task.retry(countdown=settings.job_lease_seconds)
        log.info("job %s: %s; nothing to do", job_id, status or "unknown")
        return f"skipped: {status}"
    log.info("job %s: claimed by %s (attempt %d)", job_id, worker.worker_id, job.attempt)
    worker.run(job)
    return "ran"


# Celery's signals are untyped, so connecting a handler hides its signature from mypy.
@worker_process_init.connect  # type: ignore[untyped-decorator]
def _init_pool_process(**_kwargs: object) -> None:
    """A pool process dies with its worker (as the embedded runner's do with the API), loads
    the engine now rather than during its first job, and starts sending webhooks at once."""
    _die_with_parent(os.getppid())
    import chamelaion.engine  # noqa: F401

    if _pool_settings is not None:
        _process_context(_pool_settings)


# Celery's bootsteps are untyped (Any to mypy); a worker step has to subclass one.
class SweepStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs `Dispatcher.sweep` every few seconds, and the reaper every few minutes, in the
    worker's main process, on Celery's own timer (the main process's event loop: no extra
    thread, nothing running when the pool forks). Its database connections are closed after
    each run, so a fork never inherits one."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer_refs: list[Any] = []

    def start(self, parent: Any) -> None:
        settings: Settings = parent.app.chamelaion_settings
        engine = make_engine(settings.resolved_database_url, settings.database_lock_timeout_seconds)
        sessions = make_session_factory(engine)
        dispatcher = Dispatcher(parent.app, sessions, settings)
        reaper = Reaper(settings, sessions)

        def run(task: Callable[[], object], name: str) -> Callable[[], None]:
            def step() -> None:
                try:
                    task()
                except Exception:
                    log.exception("%s failed; will retry", name)
                finally:
                    engine.dispose()

            return step

        sweep, reap = run(dispatcher.sweep, "sweep"), run(reaper.run, "reaping")
        parent.timer.call_after(0.0, sweep)
        parent.timer.call_after(0.0, reap)
        self._timer_refs = [
            parent.timer.call_repeatedly(sweep_interval(settings), sweep),
            parent.timer.call_repeatedly(settings.reaper_interval_seconds, reap),
        ]

    def stop(self, parent: Any) -> None:
        for ref in self._timer_refs:
            ref.cancel()


app: Celery  # built on first use by __getattr__: importing this module connects to nothing


def __getattr__(name: str) -> Celery:
    """`app` is built on first use, from the environment, for `celery -A ...` commands."""
    if name == "app":
        global app
        app = create_celery(Settings.model_validate({}))
        return app
    raise AttributeError(name)
