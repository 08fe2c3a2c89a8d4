"""The inference worker: one thread that runs translation jobs in order and feeds the systemd watchdog.

The watchdog is kicked from this loop only, between jobs and while idle, so a job that hangs stops the pings and
systemd restarts the daemon. Jobs wait in a bounded queue; a full queue refuses new work instead of growing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

IDLE_WAKE_S = 1.0  # how often the idle loop wakes when no watchdog interval asks for more
JOIN_TIMEOUT_S = 5.0


class WorkerBusy(Exception):
    """The job queue is full."""


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], Any]
    future: Future


class Worker:
    """Runs submitted callables one at a time on its own thread."""

    def __init__(self, max_jobs: int, kick: Callable[[], None], wake_s: float = IDLE_WAKE_S) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_jobs)
        self._kick = kick
        self._wake_s = wake_s
        self._thread = threading.Thread(target=self._loop, name="inference-worker", daemon=True)
        self._busy = threading.Event()
        self._current = ""
        self._stopping = threading.Event()
        self.completed = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    @property
    def current(self) -> str:
        return self._current

    def submit(self, name: str, run: Callable[[], Any]) -> Future:
        """Queue ``run``; raises :class:`WorkerBusy` when the queue is full or the worker stopped."""
        if self._stopping.is_set():
            raise WorkerBusy("the daemon is stopping")
        job = Job(name=name, run=run, future=Future())
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise WorkerBusy(f"{self._jobs.maxsize} jobs already waiting") from None
        return job.future

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop after the current job; pending jobs are cancelled. Returns False if the thread did not end."""
        self._stopping.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        try:
            self._jobs.put_nowait(None)
        except queue.Full:
            logger.debug("worker queue full while stopping; the loop sees the stop flag")
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._kick()
            try:
                job = self._jobs.get(timeout=self._wake_s)
            except queue.Empty:
                continue
            if job is None:
                break
            self._run(job)
        logger.debug("inference worker stopped")

    def _run(self, job: Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        self._busy.set()
        self._current = job.name
        try:
            job.future.set_result(job.run())
            self.completed += 1
        except Exception as exc:  # reported to whoever waits on the future, and logged
            self.failed += 1
            logger.error("%s failed: %s", job.name, exc, exc_info=logger.isEnabledFor(logging.DEBUG))
            job.future.set_exception(exc)
        finally:
            self._busy.clear()
            self._current = ""
