"""Keeping the data dir bounded: expired outputs, orphaned inputs and stray temp files go.

Without this the disk only grows: outputs are kept forever, a job failed by stale-job recovery
keeps its inputs, an upload cut off by a killed API leaves a partial `inputs/<id>/` with no
request, and a killed attempt leaves its half-rendered `.<id>.<nonce>.mp4`. The reaper runs at
start and then every `reaper_interval_seconds` (in the embedded runner's supervisor, or in each
Celery worker's sweep). Any number may run at once: an output is expired with a conditional
UPDATE that only one of them wins, and removing a file twice is harmless.

What is removed, and why it is safe:
- a completed request's output once `output_retention_seconds` have passed since it finished
  (the request stays, with `output_expired`);
- `inputs/<id>/` of a request that has finished (no worker will read it again), or that has no
  request and has not been written to for `orphan_grace_seconds` (an upload still arriving has
  no request yet, but its file keeps changing);
- in `outputs/`, a temp render of a job that is not processing, and an output with no request
  (deleted while its worker was finishing).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server.config import Settings
from chamelaion.server.models import FINISHED_STATUSES, JobStatus, LipsyncJob, utcnow
from chamelaion.server.storage import Storage

log = logging.getLogger("chamelaion.reaper")
BATCH = 500


@dataclass
class Reaped:
    outputs_expired: int = 0
    input_dirs: int = 0
    output_files: int = 0


def _request_id(name: str) -> str | None:
    """The request id a data-dir entry is named after, or None for anything else."""
    try:
        return str(uuid.UUID(name))
    except ValueError:
        return None


def _last_written(directory: Path) -> float:
    """The newest modification time in a directory (itself included), 0 if it vanished."""
    try:
        times = [directory.stat().st_mtime]
        times += [entry.stat().st_mtime for entry in directory.iterdir()]
    except FileNotFoundError:
        return 0.0
    return max(times)


class Reaper:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self._settings = settings
        self._sessions = sessions
        self._storage = Storage(settings)

    def run(self) -> Reaped:
        reaped = Reaped(
            outputs_expired=self._expire_outputs(),
            input_dirs=self._orphaned_inputs(),
            output_files=self._stray_outputs(),
        )
        if reaped.outputs_expired or reaped.input_dirs or reaped.output_files:
            log.info(
                "reaped %d expired outputs, %d input dirs, %d stray output files",
                reaped.outputs_expired,
                reaped.input_dirs,
                reaped.output_files,
            )
        return reaped

    def _statuses(self, session: Session, ids: Iterable[str]) -> dict[str, str]:
        wanted = list(ids)
        found: dict[str, str] = {}
        for start in range(0, len(wanted), BATCH):
            rows = session.execute(
                select(LipsyncJob.id, LipsyncJob.status).where(
                    LipsyncJob.id.in_(wanted[start : start + BATCH])
                )
            ).all()
            found.update({row.id: row.status for row in rows})
        return found

    def _expire_outputs(self) -> int:
        retention = self._settings.output_retention_seconds
        if retention == 0:
            return 0
        expiring = (
            LipsyncJob.status == JobStatus.COMPLETED.value,
            LipsyncJob.output_expired_at.is_(None),
            LipsyncJob.finished_at < utcnow() - timedelta(seconds=retention),
        )
        expired = 0
        with self._sessions() as session:
            while ids := session.scalars(select(LipsyncJob.id).where(*expiring).limit(BATCH)).all():
                for request_id in ids:
                    won = session.execute(
                        update(LipsyncJob)
                        .where(LipsyncJob.id == request_id, *expiring)
                        .values(output_expired_at=utcnow())
                    ).rowcount  # type: ignore[attr-defined]
                    session.commit()
                    if won:  # this reaper marked it: it removes the file
                        self._storage.discard_output(request_id)
                        expired += 1
        return expired

    def _orphaned_inputs(self) -> int:
        directories = {
            request_id: entry
            for entry in _entries(self._settings.inputs_dir)
            if (request_id := _request_id(entry.name)) is not None and entry.is_dir()
        }
        with self._sessions() as session:
            statuses = self._statuses(session, directories)
        unwritten_since = time.time() - self._settings.orphan_grace_seconds
        removed = 0
        for request_id, directory in directories.items():
            status = statuses.get(request_id)
            if status in FINISHED_STATUSES or (
                status is None and _last_written(directory) < unwritten_since
            ):
                shutil.rmtree(directory, ignore_errors=True)
                removed += 1
        return removed

    def _stray_outputs(self) -> int:
        files: dict[str, list[Path]] = {}
        for entry in _entries(self._settings.outputs_dir):
            # "<id>.mp4", or a temp render ".<id>.<nonce>.mp4"
            request_id = _request_id(entry.name.lstrip(".").split(".", 1)[0])
            if request_id is not None:
                files.setdefault(request_id, []).append(entry)
        with self._sessions() as session:
            statuses = self._statuses(session, files)
        removed = 0
        for request_id, paths in files.items():
            status = statuses.get(request_id)
            for path in paths:
                temporary = path.name.startswith(".")
                if status is None or (temporary and status != JobStatus.PROCESSING.value):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def _entries(directory: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(directory)]
    except FileNotFoundError:
        return []
