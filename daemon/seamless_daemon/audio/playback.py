"""Live playback of translated speech: 16 kHz mono float32 utterances on an output device.

:meth:`Player.play` validates the buffer and queues it (a bounded :class:`~.queues.DropOldestQueue`) and
returns at once. A feeder thread takes one utterance at a time, resamples it to the device rate with soxr
(the whole utterance in one call: it is complete, so there is no stream state to carry), hands it to the
audio callback, and calls ``on_start``/``on_end``. ``on_end`` fires once the callback has played the last
sample AND the stream's output latency has passed, so an echo guard released on ``on_end`` does not hear
the tail. The callback copies slices of the prepared buffer and never allocates.

Device loss is handled by :class:`~.devices.StreamSupervisor` as for capture; an utterance interrupted by a
loss resumes where it stopped once the device is back.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sounddevice as sd
import soxr

from .devices import (
    Backoff,
    DeviceInfo,
    PortAudioStream,
    StreamState,
    StreamSupervisor,
    open_mono_stream,
    resolve_device,
    start_supervised,
)
from .queues import DropOldestQueue

logger = logging.getLogger(__name__)

MODEL_RATE = 16000
RESAMPLE_QUALITY = "HQ"
FEEDER_POLL_S = 0.1
CLOSE_JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PlayerSettings:
    """How to play. ``samplerate`` None means the device's default rate."""

    device: str | int | None = "default"
    config_key: str = "audio.output_device"
    samplerate: int | None = None
    block_ms: float = 20.0
    input_rate: int = MODEL_RATE
    max_queued: int = 8  # utterances waiting; the oldest waiting one is dropped on overflow
    max_utterance_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    stall_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("block_ms", "max_utterance_s", "stall_timeout_s", "input_rate", "max_queued"):
            if getattr(self, name) <= 0:
                raise ValueError(f"playback {name} must be positive, got {getattr(self, name)}")
        if self.samplerate is not None and self.samplerate <= 0:
            raise ValueError(f"playback samplerate must be positive, got {self.samplerate}")


@dataclass(frozen=True)
class Utterance:
    """One buffer handed to :meth:`Player.play`, as reported to ``on_start``/``on_end``."""

    id: int
    samples: int  # at the input rate
    duration_s: float
    tag: Any = None


@dataclass(frozen=True)
class PlayerStats:
    state: StreamState
    device: str
    device_rate: int
    playing: bool
    queued: int
    played: int
    dropped_utterances: int
    cancelled: int
    underflows: int
    losses: int
    reopens: int
    abandoned_streams: int  # dead streams PortAudio never let close; a restart reclaims them
    last_error: str


class Player:
    """Play mono utterances on one output device, one after another."""

    def __init__(
        self,
        settings: PlayerSettings,
        on_start: Callable[[Utterance], None] | None = None,
        on_end: Callable[[Utterance], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_start = on_start
        self._on_end = on_end
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._queue: DropOldestQueue[tuple[Utterance, np.ndarray]] = DropOldestQueue(settings.max_queued)
        self._ids = itertools.count(1)
        self._device: DeviceInfo | None = None
        self._rate = 0
        self._supervisor: StreamSupervisor | None = None
        self._feeder: threading.Thread | None = None
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._idle_lock = threading.Lock()  # makes "queue empty -> idle" atomic with play()
        self._cancel_gen = 0
        self._done = threading.Event()
        self._cur: np.ndarray | None = None  # device-rate samples the callback is playing
        self._pos = 0
        self._current: Utterance | None = None
        self._played = 0
        self._cancelled = 0
        self._underflows = 0

    @property
    def device(self) -> DeviceInfo | None:
        return self._device

    @property
    def device_rate(self) -> int:
        return self._rate

    @property
    def is_playing(self) -> bool:
        """True while an utterance plays or waits in the queue."""
        return not self._idle.is_set()

    def start(self) -> None:
        """Resolve the device and open the stream. Raises :class:`AudioDeviceError` with a one-line reason."""
        if self._supervisor is not None:
            raise RuntimeError("player already started")
        s = self._settings
        self._device = resolve_device(s.device, "output", s.config_key)
        self._rate = int(s.samplerate or round(self._device.default_samplerate))
        self._supervisor = StreamSupervisor(
            f"playback[{self._device.name}]",
            self._open_stream,
            Backoff(s.backoff_initial_s, s.backoff_max_s),
            s.stall_timeout_s,
            on_error=self._on_error,
            on_recovered=self._on_recovered,
        )
        start_supervised(self._supervisor, s.config_key)
        self._feeder = threading.Thread(target=self._feed, name="playback-feeder", daemon=True)
        self._feeder.start()
        logger.info("playing on %s (index %d) at %d Hz", self._device.name, self._device.index, self._rate)

    def _open_stream(self, finished_callback: Callable[[], None]) -> PortAudioStream:
        if self._device is None:
            raise RuntimeError("playback stream opened before the device was resolved")
        return open_mono_stream(sd.OutputStream, self._device, self._rate, self._settings.block_ms, self._callback,
                                finished_callback)

    def play(self, samples: np.ndarray, tag: Any = None) -> Utterance:
        """Queue a mono float buffer at ``input_rate``; returns at once. Raises ValueError on bad input."""
        if self._supervisor is None or self._closing.is_set():
            raise RuntimeError("player is not running")
        data = np.asarray(samples)
        if data.ndim != 1 or not np.issubdtype(data.dtype, np.floating):
            raise ValueError(f"play: expected a 1-D float array, got shape {data.shape} dtype {data.dtype}")
        limit = int(self._settings.max_utterance_s * self._settings.input_rate)
        if data.size > limit:
            raise ValueError(
                f"play: utterance of {data.size} samples exceeds max_utterance_s"
                f" ({self._settings.max_utterance_s:g} s = {limit} samples)"
            )
        utt = Utterance(next(self._ids), int(data.size), data.size / self._settings.input_rate, tag)
        with self._idle_lock:
            self._idle.clear()
            evicted = self._queue.put((utt, data.astype(np.float32, copy=True)))
        if evicted is not None:
            logger.warning("playback queue full: dropped utterance %d", evicted[0].id)
        return utt

    def cancel(self) -> None:
        """Drop queued utterances and cut the one playing (barge-in)."""
        self._cancel_gen += 1
        self._cancelled += len(self._queue.clear())
        if self._cur is not None:
            self._cancelled += 1
        self._cur = None
        self._done.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing plays or waits; False if ``timeout`` passed first."""
        return self._idle.wait(timeout)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        if self._supervisor is not None:
            self._supervisor.mark_alive()
        if status.output_underflow:
            self._underflows += 1
        cur, pos = self._cur, self._pos
        if cur is None:
            outdata.fill(0)
            return
        n = min(frames, cur.shape[0] - pos)
        outdata[:n, 0] = cur[pos : pos + n]
        outdata[n:].fill(0)
        self._pos = pos + n
        if self._pos >= cur.shape[0]:
            self._cur = None
            self._done.set()

    def _feed(self) -> None:
        while not self._closing.is_set():
            item = self._queue.get(timeout=FEEDER_POLL_S)
            if item is not None:
                self._play_one(*item)
            with self._idle_lock:
                if len(self._queue) == 0:
                    self._idle.set()

    def _play_one(self, utt: Utterance, data: np.ndarray) -> None:
        generation = self._cancel_gen
        if self._rate != self._settings.input_rate:
            data = soxr.resample(data, self._settings.input_rate, self._rate, quality=RESAMPLE_QUALITY)
        self._current = utt
        self._notify(self._on_start, utt)
        self._done.clear()
        self._pos = 0
        self._cur = np.ascontiguousarray(data, dtype=np.float32)
        if generation != self._cancel_gen:  # cancelled while being prepared
            self._cur = None
            self._done.set()
        while not self._done.wait(FEEDER_POLL_S):
            if self._closing.is_set():
                return
        stream = self._supervisor.stream if self._supervisor is not None else None
        latency = float(getattr(stream, "latency", 0.0) or 0.0)
        self._closing.wait(latency)  # let the last block leave the device
        self._played += 1
        self._current = None
        self._notify(self._on_end, utt)

    def _notify(self, callback: Callable[[Utterance], None] | None, utt: Utterance) -> None:
        if callback is None:
            return
        try:
            callback(utt)
        except Exception:  # a faulty listener must not stop playback
            logger.exception("playback listener failed for utterance %d", utt.id)

    def stats(self) -> PlayerStats:
        sup = self._supervisor
        return PlayerStats(
            state=sup.state if sup is not None else StreamState.STOPPED,
            device=self._device.name if self._device is not None else "",
            device_rate=self._rate,
            playing=self.is_playing,
            queued=len(self._queue),
            played=self._played,
            dropped_utterances=self._queue.dropped,
            cancelled=self._cancelled,
            underflows=self._underflows,
            losses=sup.losses if sup is not None else 0,
            reopens=sup.reopens if sup is not None else 0,
            abandoned_streams=sup.abandoned_streams if sup is not None else 0,
            last_error=sup.last_error if sup is not None else "",
        )

    def close(self) -> None:
        """Stop playing, the feeder and the stream. Idempotent."""
        self._closing.set()
        self._queue.wake()
        if self._feeder is not None and self._feeder is not threading.current_thread():
            self._feeder.join(CLOSE_JOIN_TIMEOUT_S)
        if self._supervisor is not None:
            self._supervisor.close()
        self._cur = None
        self._idle.set()
