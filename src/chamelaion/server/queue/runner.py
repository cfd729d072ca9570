"""The embedded job runner: worker processes next to the API, and a supervisor thread.

The engine is CPU-bound, so each worker is a separate process (spawned, so it starts clean
without the API's threads or sockets). The supervisor, in the API process, restarts a worker
that died and periodically re-queues jobs whose worker stopped sending heartbeats: at start
that picks up what a crash left `processing`, and later it catches a worker killed mid-job.
It also runs the reaper (`reaper.py`) at start and every `reaper_interval_seconds`, with or
without worker processes: a server started with `--workers 0` reaps too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from datetime import timedelta
from multiprocessing.process import BaseProcess

from chamelaion.server.config import Settings
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.queue.hooks import job_store
from chamelaion.server.queue.worker import worker_main
from chamelaion.server.reaper import Reaper

log = logging.getLogger("chamelaion.runner")
STOP_GRACE_SECONDS = 10.0


class EmbeddedRunner:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name="chamelaion-supervisor", daemon=True
        )
        self._engine = make_engine(
            settings.resolved_database_url, settings.database_lock_timeout_seconds
        )
        sessions = make_session_factory(self._engine)
        self._store = job_store(sessions)
        self._reaper = Reaper(settings, sessions)

    def start(self) -> None:
        self._recover()
        self._reap()
        self._processes = [self._spawn(index) for index in range(self._settings.workers)]
        self._supervisor.start()

    def stop(self) -> None:
        """Stop the workers: each gives its running job back to the queue at the engine's next
        progress report and exits; one that does not within the grace period is killed (its job
        is then re-queued when its lease runs out)."""
        self._stopping.set()
        self._supervisor.join(timeout=STOP_GRACE_SECONDS)  # so it cannot respawn anyone now
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker releases its job and exits
        for process in self._processes:
            process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        self._engine.dispose()

    def _spawn(self, index: int) -> BaseProcess:
        process = self._context.Process(
            target=worker_main,
            args=(self._settings.model_dump_json(), os.getpid()),
            name=f"chamelaion-worker-{index}",
            daemon=True,
        )
        process.start()
        return process

    def _recover(self) -> None:
        lease = timedelta(seconds=self._settings.job_lease_seconds)
        requeued, failed = self._store.recover_stale(lease, self._settings.max_attempts)
        if requeued or failed:
            log.info("recovered stale jobs: %d re-queued, %d failed", requeued, failed)

    def _reap(self) -> None:
        try:
            self._reaper.run()
        except Exception:
            log.exception("reaping failed; will retry")

    def _supervise(self) -> None:
        interval = min(5.0, self._settings.job_lease_seconds / 2)
        next_reap = time.monotonic() + self._settings.reaper_interval_seconds
        while not self._stopping.wait(interval):
            try:
                self._recover()
            except Exception:
                log.exception("stale-job recovery failed; will retry")
            if time.monotonic() >= next_reap:
                self._reap()
                next_reap = time.monotonic() + self._settings.reaper_interval_seconds
            for index, process in enumerate(self._processes):
                if not process.is_alive() and not self._stopping.is_set():
                    log.warning("worker %s exited (%s); restarting", process.name, process.exitcode)
                    self._processes[index] = self._spawn(index)
