"""Streaming mode as the daemon sees it: start, stop and retune the streaming loop, route its playback.

Rules (docs/protocol.md, "Streaming"):

* streaming runs exactly while the live ``mode`` option is ``streaming``: ``stream start`` is ``set mode
  streaming``, ``stream stop`` is ``set mode complete``;
* a stop, a mode switch, a policy switch and a language or speaker change finish the open utterance first
  (what was heard is translated and spoken in the old settings), then take effect;
* the capture has one reader: the recorder hands reading over while streaming runs and takes it back after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from seamless_daemon.app.liveness import Liveness
from seamless_daemon.app.options import LiveOptions
from seamless_daemon.app.recorder import Recorder
from seamless_daemon.app.stream_feed import CaptureFeed, CaptureSource
from seamless_daemon.app.stream_report import PieceTag, StreamReporter
from seamless_daemon.app.streaming import StreamController, StreamRuntime
from seamless_daemon.audio.playback import Player, Utterance
from seamless_daemon.config import StreamingConfig
from seamless_daemon.control.events import EventBus
from seamless_daemon.stream.session import Target
from seamless_daemon.stream.settings import (
    AgreementSettings,
    DecodeBudget,
    OverlapSettings,
    SegmenterSettings,
    StreamSettings,
)

logger = logging.getLogger(__name__)


def stream_settings(config: StreamingConfig, policy: str) -> StreamSettings:
    """The policy knobs of ``streaming`` in the config, with ``policy`` in force."""
    return StreamSettings(
        policy=policy,
        overlap=OverlapSettings(**asdict(config.overlap)),
        segmenter=SegmenterSettings(**asdict(config.segmenter)),
        agreement=AgreementSettings(**asdict(config.agreement)),
        budget=DecodeBudget(**asdict(config.budget)),
        min_translate_s=config.min_translate_s,
    )


def _target(options: LiveOptions) -> Target:
    return Target(options.target_lang, options.speaker)


class StreamingMode:
    def __init__(self, runtime: StreamRuntime, capture: CaptureSource, player: Player, events: EventBus,
                 recorder: Recorder, liveness: Liveness, wake_s: float,
                 on_failure: Callable[[str], None]) -> None:
        self._events = events
        self._recorder = recorder
        self._on_failure = on_failure
        feed = CaptureFeed(capture)
        self._reporter = StreamReporter(events, lambda samples, tag: player.play(samples, tag=tag), feed.now,
                                        lambda: player.stats().queued == 0)
        self._controller = StreamController(runtime, feed, self._reporter, liveness, wake_s, self._exited)

    @property
    def running(self) -> bool:
        return self._controller.running

    def start(self, settings: StreamSettings, options: LiveOptions) -> None:
        self._recorder.suspend()
        try:
            self._controller.start(settings, _target(options))
        except Exception:
            self._recorder.resume()
            raise
        self._events.publish("stream", active=True, policy=settings.policy, target_lang=options.target_lang)

    def stop(self, flush: bool = True, timeout_s: float | None = None) -> None:
        if timeout_s is None:
            self._controller.stop(flush)
        else:
            self._controller.stop(flush, timeout_s)

    def retune(self, old: LiveOptions, new: LiveOptions, settings: StreamSettings, settings_changed: bool) -> None:
        """Apply changed options to the running stream (each change finishes the open utterance first)."""
        if settings_changed or new.policy != old.policy:
            self._controller.set_settings(settings)
            self._events.publish("stream", active=True, policy=settings.policy, target_lang=old.target_lang)
        if _target(new) != _target(old):
            self._controller.set_target(_target(new))

    def _exited(self, failure: str | None) -> None:
        """Runs on the streaming thread as it ends."""
        self._recorder.resume()
        self._events.publish("stream", active=False)
        if failure is not None:
            self._events.publish("error", message=failure)
            self._on_failure(failure)

    # --- playback of streamed pieces (player threads) --------------------------------------------------------

    def playback_started(self, utterance: Utterance) -> dict[str, Any]:
        """Extra ``playback_start`` fields for a streamed piece (none for other playback)."""
        tag = utterance.tag
        if not isinstance(tag, PieceTag):
            return {}
        self._reporter.piece_started(tag, utterance.id)
        return {**_piece_fields(tag), "at_s": self._reporter.stream_time_s()}

    def playback_ended(self, utterance: Utterance) -> None:
        """After ``playback_end`` is published: the piece's utterance may now be complete."""
        if isinstance(utterance.tag, PieceTag):
            self._reporter.piece_ended(utterance.tag, utterance.id)

    def piece_fields(self, utterance: Utterance) -> dict[str, Any]:
        tag = utterance.tag
        if not isinstance(tag, PieceTag):
            return {}
        return {**_piece_fields(tag), "at_s": self._reporter.stream_time_s()}

    def status(self) -> dict[str, Any]:
        return {**self._controller.status(), **self._reporter.snapshot()}


def _piece_fields(tag: PieceTag) -> dict[str, Any]:
    commit = tag.speak.commit
    return {"utterance": tag.utterance, "start_index": commit.start_index, "end_index": commit.end_index}
