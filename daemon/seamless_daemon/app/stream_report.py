"""What a live stream tells the world: subscribe events, translated speech on the speaker, latency figures.

The streaming loop hands every batch of stamped session outputs to :meth:`StreamReporter.handle`. Utterance ids
and sample positions are made daemon-wide here: a policy switch starts a new session whose ids and positions
start at 0 again, so each session gets an id base and an origin on the stream timeline.

Each spoken piece is queued on the player with a :class:`PieceTag`; the player's ``on_start``/``on_end`` come
back through :meth:`piece_started`/:meth:`piece_ended` and give the real playback times for StartOffset and
EndOffset. An utterance is closed (``utterance_end`` with its figures) once its policy ended it and all its pieces
have played; pieces the player's bounded queue dropped never play, so when the player's queue runs empty every
ended utterance is closed with what did play.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from seamless_daemon.audio.resample import resample
from seamless_daemon.control.events import EventBus
from seamless_daemon.stream.events import (
    Commit,
    Dropped,
    Partial,
    Speak,
    Stamped,
    StreamFailure,
    Throttled,
    UtteranceEnd,
    UtteranceStart,
)
from seamless_daemon.stream.metrics import LatencyBook, UtteranceFigures

logger = logging.getLogger(__name__)

MODEL_RATE = 16000
MAX_TRACKED_UTTERANCES = 64  # utterances waiting for their speech to play; the oldest is closed beyond this
DECIMALS = 3


@dataclass(frozen=True)
class PieceTag:
    """Player tag of one spoken commit (daemon-wide utterance id and stream positions)."""

    speak: Speak

    @property
    def utterance(self) -> int:
        return self.speak.utterance_id


@dataclass
class _Track:
    target_lang: str = ""
    queued: int = 0
    played: int = 0
    end: UtteranceEnd | None = None
    processing: int = 0
    starts: dict[int, int] = field(default_factory=dict)  # playback id -> stream clock at its start


@dataclass
class ReportCounters:
    commits: int = 0
    pieces_queued: int = 0
    pieces_played: int = 0
    throttled: int = 0
    failures: int = 0
    policy_dropped_samples: int = 0


@dataclass(frozen=True)
class _Closed:
    end: UtteranceEnd
    target_lang: str
    figures: UtteranceFigures



def _seconds(samples: int) -> float:
    return round(samples / MODEL_RATE, DECIMALS)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def figures_dict(figures: UtteranceFigures) -> dict[str, Any]:
    return {"start_offset_s": _rounded(figures.start_offset_s), "end_offset_s": _rounded(figures.end_offset_s),
            "rtf": _rounded(figures.rtf), "skipped_steps": figures.skipped_steps,
            "audio_s": _rounded(figures.audio_s), "output_s": _rounded(figures.output_s)}


class StreamReporter:
    def __init__(self, events: EventBus, play: Callable[[np.ndarray, Any], Any], clock: Callable[[], int],
                 player_queue_empty: Callable[[], bool]) -> None:
        self._events = events
        self._play = play
        self._clock = clock
        self._queue_empty = player_queue_empty
        self._lock = threading.Lock()
        self._book = LatencyBook()
        self._tracks: dict[int, _Track] = {}
        self._origin = 0
        self._base = 0
        self._next_id = 0
        self._last: UtteranceFigures | None = None
        self._closed_total = 0
        self._target_lang = ""
        self.counters = ReportCounters()

    # --- sessions --------------------------------------------------------------------------------------------

    def new_session(self, origin: int) -> None:
        """The next outputs come from a new session whose sample 0 is ``origin`` on the stream timeline."""
        with self._lock:
            self._origin = origin
            self._base = self._next_id

    def set_target_lang(self, target_lang: str) -> None:
        """The language utterances starting from now are translated into."""
        with self._lock:
            self._target_lang = target_lang

    def dropped_capture(self, samples: int) -> None:
        """Audio the capture ring dropped (counted with the policy's own drops)."""
        if samples > 0:
            with self._lock:
                self._book.dropped(samples)

    # --- session outputs (streaming loop) --------------------------------------------------------------------

    def handle(self, stamped: Sequence[Stamped], processing: MutableMapping[int, int]) -> None:
        for item in stamped:
            output = item.output
            if isinstance(output, UtteranceStart):
                self._started(output)
            elif isinstance(output, Partial):
                self._events.publish("partial", utterance=self._base + output.utterance_id, text=output.text,
                                     token_ids=list(output.token_ids))
            elif isinstance(output, Commit):
                self._committed(output, item.at)
            elif isinstance(output, Speak):
                self._speak(output)
            elif isinstance(output, UtteranceEnd):
                self._ended(output, processing.pop(output.utterance_id, 0))
            elif isinstance(output, StreamFailure):
                self._failed(output)
            elif isinstance(output, Dropped):
                with self._lock:
                    self.counters.policy_dropped_samples += output.end_sample - output.start_sample
                    self._book.dropped(output.end_sample - output.start_sample)
            elif isinstance(output, Throttled):
                self.counters.throttled += 1

    def _started(self, output: UtteranceStart) -> None:
        with self._lock:
            gid = self._base + output.utterance_id
            self._next_id = max(self._next_id, gid + 1)
            event = UtteranceStart(gid, self._origin + output.start_sample)
            self._book.started(event)
            self._tracks[gid] = _Track(target_lang=self._target_lang)
            self._bound_tracks()
        self._events.publish("utterance_start", utterance=gid, start_s=_seconds(event.start_sample),
                             target_lang=self._target_lang)

    def _committed(self, output: Commit, at: int) -> None:
        self.counters.commits += 1
        self._events.publish(
            "commit", utterance=self._base + output.utterance_id, text=output.text,
            token_ids=list(output.token_ids), start_index=output.start_index, end_index=output.end_index,
            final=output.final, source_start_s=_seconds(self._origin + output.source_start),
            source_end_s=_seconds(self._origin + output.source_end), at_s=_seconds(self._origin + at))

    def _speak(self, output: Speak) -> None:
        if output.waveform.size == 0:
            return
        gid = self._base + output.utterance_id
        waveform = output.waveform
        if output.sample_rate != MODEL_RATE:
            waveform = resample(waveform, output.sample_rate, MODEL_RATE)
        tag = PieceTag(replace(output, utterance_id=gid, waveform=np.zeros(0, dtype=np.float32)))
        with self._lock:
            try:
                self._play(waveform, tag)
            except (RuntimeError, ValueError) as exc:
                self.counters.failures += 1
                self._events.publish("error", message=f"cannot play utterance {gid}: {exc}", utterance=gid)
                return
            self.counters.pieces_queued += 1
            track = self._tracks.get(gid)
            if track is not None:
                track.queued += 1

    def _ended(self, output: UtteranceEnd, processing: int) -> None:
        with self._lock:
            gid = self._base + output.utterance_id
            end = replace(output, utterance_id=gid, start_sample=self._origin + output.start_sample,
                          end_sample=self._origin + output.end_sample)
            track = self._tracks.setdefault(gid, _Track())
            track.end, track.processing = end, processing
            closed = self._close_if_done(gid)
        self._publish_closed(closed)

    def _failed(self, output: StreamFailure) -> None:
        self.counters.failures += 1
        self._events.publish("error", message=f"streaming step failed: {output.message}",
                             utterance=self._base + output.utterance_id, final=output.final)

    # --- playback (player threads) ---------------------------------------------------------------------------

    def stream_time_s(self) -> float:
        """The stream clock now, in seconds since streaming began."""
        return _seconds(self._clock())

    def piece_started(self, tag: PieceTag, playback_id: int) -> None:
        with self._lock:
            track = self._tracks.get(tag.utterance)
            if track is not None:
                track.starts[playback_id] = self._clock()

    def piece_ended(self, tag: PieceTag, playback_id: int) -> None:
        closed: list[_Closed] = []
        with self._lock:
            self.counters.pieces_played += 1
            track = self._tracks.get(tag.utterance)
            if track is not None:
                start = track.starts.pop(playback_id, None)
                end = self._clock()
                self._book.played(tag.speak, end if start is None else start, end)
                track.played += 1
                closed.extend(self._close_if_done(tag.utterance))
            if self._queue_empty():
                # Nothing else will play: pieces still missing were dropped by the player's queue.
                for gid in [gid for gid, t in self._tracks.items() if t.end is not None and t.played < t.queued]:
                    closed.extend(self._close(gid))
        self._publish_closed(closed)

    # --- closing ---------------------------------------------------------------------------------------------

    def _close_if_done(self, gid: int) -> list[_Closed]:
        track = self._tracks.get(gid)
        if track is None or track.end is None or track.played < track.queued:
            return []
        return self._close(gid)

    def _close(self, gid: int) -> list[_Closed]:
        track = self._tracks.pop(gid)
        if track.end is None:
            logger.warning("utterance %d never ended; forgetting it", gid)
            return []
        figures = self._book.ended(track.end, track.processing)
        self._last = figures
        self._closed_total += 1
        return [_Closed(track.end, track.target_lang, figures)]

    def _bound_tracks(self) -> None:
        while len(self._tracks) > MAX_TRACKED_UTTERANCES:
            oldest = min(self._tracks)
            self._publish_closed(self._close(oldest))

    def _publish_closed(self, closed: list[_Closed]) -> None:
        for item in closed:
            end = item.end
            self._events.publish(
                "utterance_end", utterance=end.utterance_id, target_lang=item.target_lang, text=end.text,
                token_ids=list(end.token_ids),
                start_s=_seconds(end.start_sample), end_s=_seconds(end.end_sample), steps=end.steps,
                forced_cut=end.forced_cut, failed=end.failed, **figures_dict(item.figures))

    # --- status ----------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            medians = self._book.medians()
            last = self._last
            open_count = len(self._tracks)
            closed_total = self._closed_total
        return {
            "utterances": closed_total,
            "median_window": medians.utterances,
            "open_utterances": open_count,
            "last": None if last is None else {"utterance": last.utterance_id, **figures_dict(last)},
            "median": {"start_offset_s": _rounded(medians.start_offset_s),
                       "end_offset_s": _rounded(medians.end_offset_s), "rtf": _rounded(medians.rtf)},
            "skipped_steps": medians.skipped_steps,
            "dropped_audio_s": _rounded(medians.dropped_audio_s),
            "commits": self.counters.commits,
            "pieces_queued": self.counters.pieces_queued,
            "pieces_played": self.counters.pieces_played,
            "throttled": self.counters.throttled,
            "failures": self.counters.failures,
        }
