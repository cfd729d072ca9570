"""What happens when a job finishes, in one place: the "job finished" hooks every `JobStore` of
the service runs (in the worker that finishes a job, in stale-job recovery, in a cancel).

A hook runs inside the transaction that gives the job its final status (see `jobs.py`), so
what it records is never lost to a crash between the two. Anything that should follow a job's
end (a webhook owed; the job's segments, which nobody renders any more, forgotten) subscribes
by joining `JOB_FINISHED_HOOKS`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.queue.jobs import FinishedHook, JobStore, forget_segments
from chamelaion.server.webhooks import record_delivery

JOB_FINISHED_HOOKS: tuple[FinishedHook, ...] = (record_delivery, forget_segments)


def job_store(sessions: sessionmaker[Session]) -> JobStore:
    """The service's job store: the queue's verbs plus the "job finished" hooks."""
    return JobStore(sessions, JOB_FINISHED_HOOKS)
