"""Continuous streaming mode: one thread that reads the microphone and drives a ``StreamSession``.

The loop reads the capture through :class:`~.stream_feed.CaptureFeed` (the only reader while streaming: the
recorder hands its reading over), pushes the audio in blocks of at most ``PUSH_BLOCK`` samples, and reports
the outputs through :class:`~.stream_report.StreamReporter`. Translation runs inline: nothing is queued; when
processing falls behind, the policy skips intermediate steps and the capture ring drops its oldest audio (both
counted). The loop beats :class:`~.liveness.Liveness` every time round and reads with a timeout of at most the
watchdog's wake interval, so it stays alive while idle and a hung inference stops the watchdog's pings.

Control requests (stop, new target, new policy) come from other threads through a small bounded queue and are
applied between pushes, so the session is only ever touched by the loop: a stop or switch flushes the open
utterance first (its audio so far is translated and spoken), then takes effect.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np

from seamless_daemon.app.liveness import Liveness
from seamless_daemon.app.stream_feed import CaptureFeed
from seamless_daemon.app.stream_report import StreamReporter
from seamless_daemon.runtime.incremental import IncrementalTranslator
from seamless_daemon.runtime.vad import VadModel, VadState
from seamless_daemon.stream.events import Stamped
from seamless_daemon.stream.policy import make_policy
from seamless_daemon.stream.session import StreamSession, Target
from seamless_daemon.stream.settings import StreamSettings

logger = logging.getLogger(__name__)

LOOP_NAME = "streaming"
PUSH_BLOCK = 1600  # samples (100 ms) pushed to the session at a time, so a backlog is handled in steps
MAX_REQUESTS = 4  # control requests waiting for the loop
REQUEST_PUT_TIMEOUT_S = 1.0
REQUEST_TIMEOUT_S = 60.0  # a stop or switch waits this long for the flush of the open utterance
JOIN_TIMEOUT_S = 5.0


class StreamBusy(RuntimeError):
    """The loop did not take or answer a control request in time."""


@dataclass(frozen=True)
class StreamRuntime:
    """The model pieces streaming needs, shared with complete mode's translator."""

    backend: IncrementalTranslator
    vad: VadModel


@dataclass(frozen=True)
class _Request:
    kind: str  # "stop", "target", "settings"
    value: Any
    future: Future


class StreamController:
    def __init__(self, runtime: StreamRuntime, feed: CaptureFeed, reporter: StreamReporter, liveness: Liveness,
                 wake_s: float, on_exit: Callable[[str | None], None]) -> None:
        self._runtime = runtime
        self._feed = feed
        self._reporter = reporter
        self._liveness = liveness
        self._wake_s = wake_s
        self._on_exit = on_exit
        self._requests: queue.Queue[_Request] = queue.Queue(maxsize=MAX_REQUESTS)
        self._thread: threading.Thread | None = None
        self._session: StreamSession | None = None
        self._settings: StreamSettings | None = None
        self._origin = 0
        self._steps_before = 0  # steps of earlier sessions
        self._reported_drops = 0  # capture-ring drops already handed to the reporter

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def idle(self) -> bool:
        """No utterance open."""
        session = self._session
        return session is None or session.idle

    # --- control (any thread) --------------------------------------------------------------------------------

    def start(self, settings: StreamSettings, target: Target) -> None:
        if self.running:
            raise RuntimeError("streaming is already running")
        self._requests = queue.Queue(maxsize=MAX_REQUESTS)
        self._settings = settings
        self._thread = threading.Thread(target=self._loop, args=(settings, target), name="streaming", daemon=True)
        self._thread.start()

    def stop(self, flush: bool = True, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        """End streaming; with ``flush`` the open utterance is translated and spoken first."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._ask("stop", flush, timeout_s)
        thread.join(JOIN_TIMEOUT_S)

    def set_target(self, target: Target) -> None:
        self._ask("target", target, REQUEST_TIMEOUT_S)

    def set_settings(self, settings: StreamSettings) -> None:
        self._ask("settings", settings, REQUEST_TIMEOUT_S)

    def _ask(self, kind: str, value: Any, timeout_s: float) -> None:
        request = _Request(kind, value, Future())
        try:
            self._requests.put(request, timeout=REQUEST_PUT_TIMEOUT_S)
        except queue.Full:
            raise StreamBusy(f"{MAX_REQUESTS} streaming requests already waiting") from None
        try:
            request.future.result(timeout=timeout_s)
        except FutureTimeout:
            raise StreamBusy(f"the streaming loop did not finish the {kind} request within {timeout_s:g} s") from None

    # --- status ----------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        session, settings = self._session, self._settings
        counters = self._feed.counters
        return {
            "active": self.running,
            "policy": settings.policy if settings is not None else None,
            "utterance_open": not self.idle,
            "steps": self._steps_before + (session.counters.steps if session is not None else 0),
            "stream_s": round(counters.fed / self._feed.rate, 3),
            "echo_guarded_s": round(counters.echo_guarded / self._feed.rate, 3),
            "capture_dropped_s": round(counters.ring_dropped / self._feed.rate, 3),
        }

    # --- the loop --------------------------------------------------------------------------------------------

    def _new_session(self, settings: StreamSettings, target: Target) -> StreamSession:
        if self._session is not None:
            self._steps_before += self._session.counters.steps
        self._origin = self._feed.counters.fed
        self._reporter.new_session(self._origin)
        origin = self._origin

        def clock() -> int:
            return self._feed.now() - origin

        # The overlap policy ignores speech probabilities: no VAD for it.
        vad = None if settings.policy == "overlap" else _vad_feed(self._runtime.vad)
        session = StreamSession(make_policy(settings), self._runtime.backend, vad, clock, target)
        self._reporter.set_target_lang(target.tgt_lang)
        self._session, self._settings = session, settings
        logger.info("streaming with the %s policy into %s (speaker %d)", settings.policy, target.tgt_lang,
                    target.speaker)
        return session

    def _loop(self, settings: StreamSettings, target: Target) -> None:
        self._liveness.register(LOOP_NAME)
        failure: str | None = None
        try:
            self._feed.begin()
            self._reported_drops = 0
            session = self._new_session(settings, target)
            while True:
                self._liveness.beat(LOOP_NAME)
                request = self._next_request()
                if request is not None:
                    session, stop = self._apply(session, request)
                    if stop:
                        break
                    continue
                self._push(session, self._feed.read(self._wake_s))
        except Exception as exc:  # the loop must report why it ended rather than die silently
            logger.exception("streaming stopped on an error")
            failure = f"streaming stopped: {type(exc).__name__}: {exc}"
            self._fail_requests(failure)
        finally:
            self._liveness.unregister(LOOP_NAME)
            self._on_exit(failure)

    def _next_request(self) -> _Request | None:
        try:
            return self._requests.get_nowait()
        except queue.Empty:
            return None

    def _apply(self, session: StreamSession, request: _Request) -> tuple[StreamSession, bool]:
        stop = False
        try:
            if request.kind == "stop":
                if request.value:
                    self._handle(session, session.flush())
                stop = True
            elif request.kind == "target":
                self._handle(session, session.set_target(request.value))
                self._reporter.set_target_lang(request.value.tgt_lang)
            else:
                self._handle(session, session.flush())
                session = self._new_session(request.value, session.target)
        except Exception as exc:  # answered to the waiting command, then the loop goes on (or stops)
            request.future.set_exception(exc)
            raise
        request.future.set_result(None)
        return session, stop

    def _fail_requests(self, message: str) -> None:
        while (request := self._next_request()) is not None:
            request.future.set_exception(RuntimeError(message))

    def _push(self, session: StreamSession, audio: np.ndarray) -> None:
        dropped = self._feed.counters.ring_dropped
        self._reporter.dropped_capture(dropped - self._reported_drops)
        self._reported_drops = dropped
        for start in range(0, audio.size, PUSH_BLOCK):
            self._liveness.beat(LOOP_NAME)
            self._handle(session, session.push(audio[start : start + PUSH_BLOCK]))

    def _handle(self, session: StreamSession, stamped: list[Stamped]) -> None:
        self._reporter.handle(stamped, session.counters.processing_samples)


def _vad_feed(model: VadModel) -> Callable[[np.ndarray], np.ndarray]:
    """Speech probabilities for one stream (its own recurrent state)."""
    state = VadState()

    def feed(block: np.ndarray) -> np.ndarray:
        return model.feed(state, block)

    return feed
