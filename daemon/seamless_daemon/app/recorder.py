"""Complete-recording mode: collects microphone audio between ``record start`` and ``record stop``.

A reader thread drains the capture queue continuously (so the capture ring never overflows while idle) and
appends to the recording only while one is open. While streaming, the streaming loop is the capture's reader:
:meth:`Recorder.suspend` hands reading over (after any read in progress) and :meth:`Recorder.resume` takes it
back. The recording is bounded by ``max_seconds``: reaching it
ends the recording by itself and hands it to ``on_limit``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.05
JOIN_TIMEOUT_S = 2.0


class RecordState(str, Enum):
    IDLE = "idle"
    PENDING = "pending"  # asked for while translated speech plays; starts when playback ends
    RECORDING = "recording"


@dataclass(frozen=True)
class Recording:
    samples: np.ndarray  # float32 mono at the model rate
    sample_rate: int
    hit_limit: bool

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


class Recorder:
    """Owns the recording buffer. ``read_audio`` is the capture's read function (model rate, float32)."""

    def __init__(
        self,
        read_audio: Callable[[float], np.ndarray],
        sample_rate: int,
        max_seconds: float,
        on_limit: Callable[[Recording], None],
    ) -> None:
        self._read = read_audio
        self._rate = sample_rate
        self._max_samples = int(max_seconds * sample_rate)
        self._on_limit = on_limit
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._size = 0
        self._state = RecordState.IDLE
        self._stop = threading.Event()
        self._suspended = threading.Event()
        self._reading = threading.Lock()  # held around each capture read
        self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
        self.read_errors = 0

    @property
    def state(self) -> RecordState:
        return self._state

    @property
    def recorded_s(self) -> float:
        return self._size / self._rate

    def set_max_seconds(self, max_seconds: float) -> None:
        with self._lock:
            self._max_samples = int(max_seconds * self._rate)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)

    def suspend(self) -> None:
        """Stop reading the capture; returns once no read of this thread is in progress."""
        self._suspended.set()
        with self._reading:
            logger.debug("recorder stopped reading the capture")

    def resume(self) -> None:
        self._suspended.clear()

    def begin(self, pending: bool = False) -> None:
        """Open a recording now, or mark one pending (``activate_pending`` opens it)."""
        with self._lock:
            self._chunks, self._size = [], 0
            self._state = RecordState.PENDING if pending else RecordState.RECORDING

    def activate_pending(self) -> bool:
        """Open the pending recording, if any. Returns True when one was opened."""
        with self._lock:
            if self._state is not RecordState.PENDING:
                return False
            self._state = RecordState.RECORDING
            return True

    def finish(self) -> Recording:
        """Close the recording and return what it holds (possibly empty)."""
        with self._lock:
            return self._take(hit_limit=False)

    def cancel(self) -> float:
        """Discard the recording; returns the seconds thrown away."""
        with self._lock:
            dropped = self._size / self._rate
            self._chunks, self._size = [], 0
            self._state = RecordState.IDLE
            return dropped

    def _take(self, hit_limit: bool) -> Recording:
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        self._chunks, self._size = [], 0
        self._state = RecordState.IDLE
        return Recording(samples=samples.astype(np.float32, copy=False), sample_rate=self._rate, hit_limit=hit_limit)

    def _append(self, chunk: np.ndarray) -> Recording | None:
        with self._lock:
            if self._state is not RecordState.RECORDING or chunk.size == 0:
                return None
            room = self._max_samples - self._size
            self._chunks.append(chunk[:room])
            self._size += min(room, chunk.size)
            if self._size >= self._max_samples:
                return self._take(hit_limit=True)
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._suspended.is_set():
                self._stop.wait(READ_TIMEOUT_S)
                continue
            try:
                with self._reading:
                    if self._suspended.is_set():
                        continue
                    chunk = self._read(READ_TIMEOUT_S)
            except RuntimeError as exc:
                self.read_errors += 1
                logger.warning("capture read failed: %s", exc)
                self._stop.wait(READ_TIMEOUT_S)
                continue
            full = self._append(chunk)
            if full is not None:
                logger.info("recording reached its %.1f s limit", full.duration_s)
                self._on_limit(full)
