"""The streaming loop's view of the microphone: one continuous 16 kHz timeline and the clock on it.

The capture discards audio in two places: its echo guard (while translated speech plays) and its ring (oldest
samples, when the reader is behind). The feed puts zeros of the same length where that audio was, so

* the timeline stays on real time: sample *n* of the stream is the *n*-th sample the device produced since
  streaming began, and the policy's lag measure and the StartOffset/EndOffset figures stay true;
* the VAD hears silence where the echo guard was closed: an utterance open when playback begins ends after
  ``segmenter.min_silence_s`` with what was said before it, and nothing the microphone heard during playback
  (the loudspeaker's own echo) is translated.

Placement: ring drops are the oldest audio, so their zeros go first. Echo-guard gaps go after the audio read
when the guard was open at the previous read (it closed during the interval), else before it. Both are exact to
within one read interval.

The clock (:meth:`CaptureFeed.now`) is the audio the device has produced so far: samples fed, plus what waits
in the ring, plus what was discarded since the last read; it runs on while the loop is busy translating.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from seamless_daemon.audio.capture import CaptureStats

logger = logging.getLogger(__name__)

MODEL_RATE = 16000


class CaptureSource(Protocol):
    @property
    def enabled(self) -> bool: ...

    def read(self, timeout: float | None = None, min_samples: int = 1) -> np.ndarray: ...

    def discard(self) -> int: ...

    def stats(self) -> CaptureStats: ...


@dataclass
class FeedCounters:
    """Model-rate samples put on the timeline since streaming began."""

    fed: int = 0
    echo_guarded: int = 0  # zeros standing for audio the echo guard discarded
    ring_dropped: int = 0  # zeros standing for audio the capture ring dropped


@dataclass(frozen=True)
class _Marks:
    gated: int  # device-rate totals at the last read
    dropped: int
    guard_open: bool


class CaptureFeed:
    """Reads the capture for the streaming loop (the only reader while streaming)."""

    def __init__(self, capture: CaptureSource, rate: int = MODEL_RATE) -> None:
        self._capture = capture
        self._rate = rate
        self.counters = FeedCounters()
        self._marks = _Marks(0, 0, True)

    @property
    def rate(self) -> int:
        return self._rate

    def begin(self) -> None:
        """Start a new timeline at the present: stale queued audio is thrown away."""
        self._capture.discard()
        stats = self._capture.stats()
        self._marks = _Marks(stats.gated_samples, stats.dropped_samples, self._capture.enabled)
        self.counters = FeedCounters()

    def _to_model(self, device_samples: int, device_rate: int) -> int:
        return round(device_samples * self._rate / device_rate) if device_rate > 0 else 0

    def _pending(self, stats: CaptureStats) -> tuple[int, int]:
        """Model-rate samples gated and dropped since the last read."""
        gated = self._to_model(stats.gated_samples, stats.device_rate) - self._to_model(self._marks.gated,
                                                                                         stats.device_rate)
        dropped = self._to_model(stats.dropped_samples, stats.device_rate) - self._to_model(self._marks.dropped,
                                                                                             stats.device_rate)
        return max(0, gated), max(0, dropped)

    def now(self) -> int:
        """Samples the device has produced since :meth:`begin` (the stream clock)."""
        stats = self._capture.stats()
        gated, dropped = self._pending(stats)
        return self.counters.fed + self._to_model(stats.queued_samples, stats.device_rate) + gated + dropped

    def read(self, timeout: float) -> np.ndarray:
        """The next stretch of the timeline (possibly empty), zeros standing in for discarded audio."""
        guard_was_open = self._marks.guard_open
        audio = self._capture.read(timeout)
        stats = self._capture.stats()
        gated, dropped = self._pending(stats)
        self._marks = _Marks(stats.gated_samples, stats.dropped_samples, self._capture.enabled)
        if gated == 0 and dropped == 0:
            self.counters.fed += audio.size
            return audio
        if dropped:
            logger.warning("streaming fell behind: the capture ring dropped %.2f s of audio", dropped / self._rate)
        parts = [np.zeros(dropped, dtype=np.float32)]
        gap = np.zeros(gated, dtype=np.float32)
        parts.extend([audio, gap] if guard_was_open else [gap, audio])
        joined = np.concatenate(parts)
        self.counters.fed += joined.size
        self.counters.echo_guarded += gated
        self.counters.ring_dropped += dropped
        return joined
