"""Audio devices: resolve a configured device spec, and keep a stream on it open across device loss.

A device spec is ``"default"`` (or None/empty), a PortAudio device index (int or digit string), or a
case-insensitive name: an exact name wins, else a unique substring. Errors are one line and name the
configuration key the spec came from, e.g.::

    audio.input_device: no input device named "usb mic"; available: virt_mic, default

:class:`StreamSupervisor` owns the open/close lifecycle of one PortAudio stream for :mod:`.capture` and
:mod:`.playback`. A device is considered lost when PortAudio finishes the stream on its own (the
``finished_callback`` fires without a close being asked for: a USB unplug, a sound server that died),
when the stream stops being active, or when no audio callback arrived for ``stall_timeout_s``. The
supervisor thread then closes the dead stream and reopens it with exponential backoff.

PortAudio's device list is read once per process. The index resolved at start is reused on reopen:
ALSA PCM names (``default``, ``pulse``, ``hw:``-style cards that come back in the same slot) survive a
sound server restart or a replug. A device that comes back under another index needs a daemon restart.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Protocol

import sounddevice as sd

logger = logging.getLogger(__name__)

MS_PER_S = 1000.0

Direction = Literal["input", "output"]
DEFAULT_SPECS = ("", "default")
AVAILABLE_LIST_LIMIT = 12  # names listed in a "no such device" error
BACKOFF_FACTOR = 2.0
SUPERVISOR_POLL_S = 0.1
CLOSE_JOIN_TIMEOUT_S = 5.0
CLOSE_STREAM_TIMEOUT_S = 2.0


class AudioDeviceError(Exception):
    """A device that cannot be resolved or opened. The message is one line and names the config key."""


@dataclass(frozen=True)
class DeviceInfo:
    """A resolved PortAudio device."""

    index: int
    name: str
    default_samplerate: float
    channels: int  # maximum channels in the requested direction


def _channels(dev: Any, direction: Direction) -> int:
    return int(dev["max_input_channels" if direction == "input" else "max_output_channels"])


def _info(dev: Any, index: int, direction: Direction) -> DeviceInfo:
    return DeviceInfo(index, str(dev["name"]), float(dev["default_samplerate"]), _channels(dev, direction))


def _available(devices: Sequence[Any], direction: Direction) -> str:
    names = [str(d["name"]) for d in devices if _channels(d, direction) > 0]
    if not names:
        return "none"
    more = len(names) - AVAILABLE_LIST_LIMIT
    return ", ".join(names[:AVAILABLE_LIST_LIMIT]) + (f", ... ({more} more)" if more > 0 else "")


def _default_index(direction: Direction) -> int:
    pair = sd.default.device
    try:
        return int(pair[0 if direction == "input" else 1])
    except (TypeError, IndexError, ValueError):
        return int(pair)


def resolve_device(
    spec: str | int | None,
    direction: Direction,
    key: str,
    devices: Sequence[Any] | None = None,
) -> DeviceInfo:
    """Resolve ``spec`` to a device with channels in ``direction``; ``key`` names the spec in errors."""
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
    devs: Sequence[Any] = list(sd.query_devices()) if devices is None else list(devices)
    if isinstance(spec, bool) or not isinstance(spec, (str, int, type(None))):
        raise AudioDeviceError(f"{key}: expected a device name, index or \"default\", got {spec!r}")
    text = "" if spec is None else str(spec).strip()
    if text.lower() in DEFAULT_SPECS:
        return _resolve_default(devs, direction, key)
    if isinstance(spec, int) or text.lstrip("-").isdigit():
        return _resolve_index(devs, int(text), direction, key)
    return _resolve_name(devs, text, direction, key)


def _resolve_default(devs: Sequence[Any], direction: Direction, key: str) -> DeviceInfo:
    index = _default_index(direction)
    if 0 <= index < len(devs) and _channels(devs[index], direction) > 0:
        return _info(devs[index], index, direction)
    for i, dev in enumerate(devs):  # PortAudio may report no default while ALSA still has one
        if str(dev["name"]) == "default" and _channels(dev, direction) > 0:
            return _info(dev, i, direction)
    raise AudioDeviceError(
        f"{key}: no default {direction} device; available: {_available(devs, direction)}"
    )


def _resolve_index(devs: Sequence[Any], index: int, direction: Direction, key: str) -> DeviceInfo:
    if not 0 <= index < len(devs):
        raise AudioDeviceError(
            f"{key}: no {direction} device with index {index}; available: {_available(devs, direction)}"
        )
    if _channels(devs[index], direction) <= 0:
        raise AudioDeviceError(
            f"{key}: device {index} \"{devs[index]['name']}\" has no {direction} channels;"
            f" available: {_available(devs, direction)}"
        )
    return _info(devs[index], index, direction)


def _resolve_name(devs: Sequence[Any], name: str, direction: Direction, key: str) -> DeviceInfo:
    wanted = name.casefold()
    usable = [(i, d) for i, d in enumerate(devs) if _channels(d, direction) > 0]
    exact = [(i, d) for i, d in usable if str(d["name"]).casefold() == wanted]
    matches = exact or [(i, d) for i, d in usable if wanted in str(d["name"]).casefold()]
    if len(matches) == 1:
        index, dev = matches[0]
        return _info(dev, index, direction)
    if matches:
        names = ", ".join(f"{d['name']} ({i})" for i, d in matches)
        raise AudioDeviceError(f"{key}: {direction} device name \"{name}\" is ambiguous: matches {names}")
    raise AudioDeviceError(
        f"{key}: no {direction} device named \"{name}\"; available: {_available(devs, direction)}"
    )


class StreamState(str, Enum):
    """Where a supervised stream stands."""

    STOPPED = "stopped"  # not started yet
    RUNNING = "running"
    LOST = "lost"  # the device went away; reopening with backoff
    CLOSED = "closed"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between reopen attempts."""

    initial_s: float = 0.5
    max_s: float = 10.0
    factor: float = BACKOFF_FACTOR

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {self.initial_s} and {self.max_s}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopen attempt number ``attempt`` (0-based)."""
        return min(self.max_s, self.initial_s * self.factor ** attempt)


class PortAudioStream(Protocol):
    """What the supervisor needs of a sounddevice stream."""

    active: bool

    def start(self) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


StreamFactory = Callable[[Callable[[], None]], PortAudioStream]


def open_mono_stream(
    stream_type: type[sd.InputStream] | type[sd.OutputStream],
    device: DeviceInfo,
    rate: int,
    block_ms: float,
    callback: Callable[..., None],
    finished_callback: Callable[[], None],
) -> PortAudioStream:
    """Build (not start) a mono float32 PortAudio stream of ``block_ms`` blocks on ``device``."""
    return stream_type(
        device=device.index,
        samplerate=rate,
        channels=1,
        dtype="float32",
        blocksize=max(1, round(rate * block_ms / MS_PER_S)),
        callback=callback,
        finished_callback=finished_callback,
    )


def skip_portaudio_teardown_at_exit() -> None:
    """Exit without sounddevice's PortAudio teardown.

    After a device loss, a stream PortAudio never let close (an abandoned stream) makes ``Pa_Terminate`` block
    forever in sounddevice's exit handler, so the process would never end. The teardown only frees what the
    process's exit frees anyway.
    """
    atexit.unregister(sd._exit_handler)  # sounddevice registers this one function with atexit at import


def start_supervised(supervisor: StreamSupervisor, config_key: str) -> None:
    """Open the supervised stream; a failure is re-raised naming the config key."""
    try:
        supervisor.start()
    except AudioDeviceError as exc:
        raise AudioDeviceError(f"{config_key}: {exc}") from exc


class StreamSupervisor:
    """Keep one PortAudio stream open; detect device loss and reopen with exponential backoff.

    ``open_stream(finished_callback)`` must build (not start) a stream that calls ``finished_callback``
    when PortAudio finishes it. The stream's audio callback must call :meth:`mark_alive` on every call.
    ``on_error(message)`` is called (on the supervisor thread) when the device is lost and when a reopen
    attempt fails; ``on_recovered()`` when a reopen succeeded.
    """

    def __init__(
        self,
        name: str,
        open_stream: StreamFactory,
        backoff: Backoff,
        stall_timeout_s: float,
        on_error: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        if stall_timeout_s <= 0:
            raise ValueError(f"{name}: stall_timeout_s must be positive, got {stall_timeout_s}")
        self._name = name
        self._open_stream = open_stream
        self._backoff = backoff
        self._stall_timeout_s = stall_timeout_s
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stream: PortAudioStream | None = None
        self._generation = 0
        self._state = StreamState.STOPPED
        self._beats = 0
        self._lost_reason = ""
        self._last_error = ""
        self._losses = 0
        self._reopens = 0
        self._abandoned = 0
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def losses(self) -> int:
        """How many times the device was lost."""
        return self._losses

    @property
    def reopens(self) -> int:
        """How many times the stream was reopened after a loss."""
        return self._reopens

    @property
    def abandoned_streams(self) -> int:
        """Dead streams whose close never returned (see :meth:`_close_stream`)."""
        return self._abandoned

    @property
    def stream(self) -> PortAudioStream | None:
        return self._stream

    def mark_alive(self) -> None:
        """Called from the audio callback: proves the stream still delivers."""
        self._beats += 1

    def start(self) -> None:
        """Open and start the stream; raises :class:`AudioDeviceError` if that fails. Then supervise."""
        if self._state != StreamState.STOPPED:
            raise RuntimeError(f"{self._name}: already started")
        try:
            self._open()
        except (sd.PortAudioError, OSError, ValueError) as exc:
            raise AudioDeviceError(f"{self._name}: cannot open the device: {_one_line(exc)}") from exc
        self._state = StreamState.RUNNING
        self._thread = threading.Thread(target=self._supervise, name=f"{self._name}-supervisor", daemon=True)
        self._thread.start()

    def report_lost(self, reason: str) -> None:
        """Declare the device lost (from any thread, including an audio callback)."""
        self._lost_reason = reason
        self._wake.set()

    def close(self) -> None:
        """Stop supervising and close the stream. Idempotent."""
        with self._lock:
            if self._state == StreamState.CLOSED:
                return
            self._state = StreamState.CLOSED
            self._generation += 1
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(CLOSE_JOIN_TIMEOUT_S)
        self._close_stream()

    def _open(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        stream = self._open_stream(lambda: self._finished(generation))
        try:
            stream.start()
        except BaseException:
            stream.close()
            raise
        self._stream = stream

    def _finished(self, generation: int) -> None:
        if generation == self._generation and self._state == StreamState.RUNNING:
            self.report_lost("the stream was finished by PortAudio")

    def _close_stream(self) -> None:
        """Abort and close the current stream, waiting at most ``CLOSE_STREAM_TIMEOUT_S``.

        After a sound server dies, PortAudio's ALSA thread can spin without ever finishing, and
        ``Pa_AbortStream`` then waits for it forever. The close runs on a helper thread so that such a
        stream is abandoned (logged, counted) instead of blocking recovery.
        """
        stream, self._stream = self._stream, None
        if stream is None:
            return
        closer = threading.Thread(target=self._abort_and_close, args=(stream,), name=f"{self._name}-closer",
                                  daemon=True)
        closer.start()
        closer.join(CLOSE_STREAM_TIMEOUT_S)
        if closer.is_alive():
            self._abandoned += 1
            logger.warning("%s: a dead stream did not close within %g s; abandoned it", self._name,
                           CLOSE_STREAM_TIMEOUT_S)

    def _abort_and_close(self, stream: PortAudioStream) -> None:
        try:
            stream.abort()
            stream.close()
        except (sd.PortAudioError, OSError) as exc:
            logger.debug("%s: closing a dead stream: %s", self._name, _one_line(exc))

    def _supervise(self) -> None:
        last_beats, last_beat_at = self._beats, time.monotonic()
        while self._state == StreamState.RUNNING:
            self._wake.wait(SUPERVISOR_POLL_S)
            self._wake.clear()
            if self._state != StreamState.RUNNING:
                return
            now = time.monotonic()
            if self._beats != last_beats:
                last_beats, last_beat_at = self._beats, now
            reason = self._lost_reason
            if not reason and self._stream is not None and not self._stream.active:
                reason = "the stream stopped"
            if not reason and now - last_beat_at > self._stall_timeout_s:
                reason = f"no audio callback for {self._stall_timeout_s:g} s"
            if reason:
                self._recover(reason)
                last_beats, last_beat_at = self._beats, time.monotonic()

    def _recover(self, reason: str) -> None:
        with self._lock:
            if self._state != StreamState.RUNNING:
                return
            self._state = StreamState.LOST
            self._generation += 1  # the dead stream's finished_callback is now ignored
        self._losses += 1
        self._report(f"{self._name}: device lost: {reason}")
        self._close_stream()
        attempt = 0
        while self._state == StreamState.LOST:
            self._wake.wait(self._backoff.delay(attempt))
            self._wake.clear()
            if self._state != StreamState.LOST:
                break
            try:
                self._open()
            except (sd.PortAudioError, OSError, ValueError) as exc:
                attempt += 1
                self._report(f"{self._name}: reopen attempt {attempt} failed: {_one_line(exc)}")
                continue
            with self._lock:
                if self._state != StreamState.LOST:  # closed while we were reopening
                    break
                self._lost_reason = ""
                self._state = StreamState.RUNNING
            self._reopens += 1
            logger.info("%s: device recovered after %d failed attempt(s)", self._name, attempt)
            if self._on_recovered is not None:
                self._on_recovered()
            return
        self._close_stream()

    def _report(self, message: str) -> None:
        self._last_error = message
        logger.warning("%s", message)
        if self._on_error is not None:
            self._on_error(message)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
