"""Live microphone capture: a PortAudio input stream feeding a bounded ring, read as 16 kHz mono float32.

The audio callback only copies the block into a :class:`~.queues.SampleRing` at the DEVICE rate. Resampling
to the model rate happens in :meth:`Capture.read`, on the worker thread, with one ``soxr.ResampleStream``:

* the callback stays a bounded memcpy - ``resample_chunk`` allocates a new output array per call and its
  cost varies with the filter's state, neither of which belongs in a real-time thread;
* a ``ResampleStream`` is stateful and not thread-safe, so it lives with its single consumer;
* the ring's capacity is a fixed number of device-rate samples, so memory is bounded either way.

Echo guard: while translated speech plays, set :attr:`Capture.enabled` to False. The callback then discards
blocks (counted as ``gated_samples``). Turning it back on keeps discarding for ``echo_tail_ms`` so the end of
the utterance, still travelling from speaker to microphone, is not heard as speech.

Device loss is handled by :class:`~.devices.StreamSupervisor`: :attr:`CaptureStats.state` turns ``lost``,
``on_error`` is called, and the stream is reopened with exponential backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sounddevice as sd
import soxr

from .devices import (
    MS_PER_S,
    Backoff,
    DeviceInfo,
    PortAudioStream,
    StreamState,
    StreamSupervisor,
    open_mono_stream,
    resolve_device,
    start_supervised,
)
from .queues import SampleRing

logger = logging.getLogger(__name__)

MODEL_RATE = 16000
RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True)
class CaptureSettings:
    """How to capture. ``samplerate`` None means the device's default rate."""

    device: str | int | None = "default"
    config_key: str = "audio.input_device"
    samplerate: int | None = None
    block_ms: float = 20.0
    output_rate: int = MODEL_RATE
    queue_s: float = 10.0
    echo_tail_ms: float = 250.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    stall_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("block_ms", "queue_s", "stall_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"capture {name} must be positive, got {getattr(self, name)}")
        if self.echo_tail_ms < 0:
            raise ValueError(f"capture echo_tail_ms must be >= 0, got {self.echo_tail_ms}")
        if self.samplerate is not None and self.samplerate <= 0:
            raise ValueError(f"capture samplerate must be positive, got {self.samplerate}")
        if self.output_rate <= 0:
            raise ValueError(f"capture output_rate must be positive, got {self.output_rate}")


@dataclass(frozen=True)
class CaptureStats:
    """A snapshot of a capture's health. Sample counts are at the device rate."""

    state: StreamState
    device: str
    device_rate: int
    output_rate: int
    enabled: bool
    overflows: int  # blocks PortAudio flagged input_overflow
    dropped_samples: int  # oldest samples overwritten because the reader fell behind
    gated_samples: int  # samples discarded by the echo guard
    queued_samples: int
    losses: int
    reopens: int
    abandoned_streams: int  # dead streams PortAudio never let close; a restart reclaims them
    last_error: str


class Capture:
    """Capture mono audio from one input device; :meth:`read` returns it at ``output_rate``.

    ``read`` must be called from one thread only (it owns the resampler).
    """

    def __init__(
        self,
        settings: CaptureSettings,
        on_error: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._device: DeviceInfo | None = None
        self._rate = 0
        self._ring: SampleRing | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._supervisor: StreamSupervisor | None = None
        self._enabled = True
        self._gate_until = 0.0
        self._overflows = 0
        self._gated = 0
        self._start_lock = threading.Lock()

    @property
    def device(self) -> DeviceInfo | None:
        return self._device

    @property
    def device_rate(self) -> int:
        return self._rate

    @property
    def enabled(self) -> bool:
        """False while the echo guard discards captured audio."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if value and not self._enabled:
            self._gate_until = time.monotonic() + self._settings.echo_tail_ms / MS_PER_S
        self._enabled = bool(value)

    def start(self) -> None:
        """Resolve the device and start capturing. Raises :class:`AudioDeviceError` with a one-line reason."""
        with self._start_lock:
            if self._supervisor is not None:
                raise RuntimeError("capture already started")
            s = self._settings
            self._device = resolve_device(s.device, "input", s.config_key)
            self._rate = int(s.samplerate or round(self._device.default_samplerate))
            self._ring = SampleRing(int(s.queue_s * self._rate))
            if self._rate != s.output_rate:
                self._resampler = soxr.ResampleStream(
                    self._rate, s.output_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
                )
            self._supervisor = StreamSupervisor(
                f"capture[{self._device.name}]",
                self._open_stream,
                Backoff(s.backoff_initial_s, s.backoff_max_s),
                s.stall_timeout_s,
                on_error=self._on_error,
                on_recovered=self._on_recovered,
            )
            start_supervised(self._supervisor, s.config_key)
            logger.info("capturing from %s (index %d) at %d Hz", self._device.name, self._device.index, self._rate)

    def _open_stream(self, finished_callback: Callable[[], None]) -> PortAudioStream:
        if self._device is None:
            raise RuntimeError("capture stream opened before the device was resolved")
        return open_mono_stream(sd.InputStream, self._device, self._rate, self._settings.block_ms, self._callback,
                                finished_callback)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        supervisor, ring = self._supervisor, self._ring
        if supervisor is None or ring is None:
            return
        supervisor.mark_alive()
        if status.input_overflow:
            self._overflows += 1
        if not self._enabled or (self._gate_until and time.monotonic() < self._gate_until):
            self._gated += frames
            return
        ring.put(indata[:, 0])

    def read(self, timeout: float | None = None, min_samples: int = 1) -> np.ndarray:
        """Captured audio at ``output_rate`` since the last read (possibly empty after ``timeout``).

        Waits up to ``timeout`` seconds for at least ``min_samples`` device-rate samples.
        """
        ring = self._ring
        if ring is None:
            raise RuntimeError("capture not started")
        raw = ring.get(timeout=timeout, min_samples=min_samples)
        if self._resampler is None or raw.size == 0:
            return raw
        return self._resampler.resample_chunk(raw)

    def discard(self) -> int:
        """Drop whatever is queued (e.g. after a long pause); returns device-rate samples dropped."""
        return self._ring.clear() if self._ring is not None else 0

    def stats(self) -> CaptureStats:
        sup, ring = self._supervisor, self._ring
        return CaptureStats(
            state=sup.state if sup is not None else StreamState.STOPPED,
            device=self._device.name if self._device is not None else "",
            device_rate=self._rate,
            output_rate=self._settings.output_rate,
            enabled=self._enabled,
            overflows=self._overflows,
            dropped_samples=ring.dropped_samples if ring is not None else 0,
            gated_samples=self._gated,
            queued_samples=ring.depth if ring is not None else 0,
            losses=sup.losses if sup is not None else 0,
            reopens=sup.reopens if sup is not None else 0,
            abandoned_streams=sup.abandoned_streams if sup is not None else 0,
            last_error=sup.last_error if sup is not None else "",
        )

    def close(self) -> None:
        """Stop the stream and the supervisor. Idempotent."""
        if self._supervisor is not None:
            self._supervisor.close()
