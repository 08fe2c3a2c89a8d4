"""Latency figures of a stream, per utterance and as running medians (what ``status`` shows).

* StartOffset: start of the utterance's audio (speech onset, padding included) → first translated audio out.
* EndOffset: end of the utterance's audio → end of its last translated audio.
* RTF: clock time spent translating and synthesising the utterance ÷ its audio duration.

Feed it the session's stamped outputs and the playback times of each :class:`Speak` (real ones in the daemon,
modelled ones in the simulator). All inputs are sample counts on the stream clock.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from dataclasses import dataclass

from seamless_daemon.stream.events import Speak, UtteranceEnd, UtteranceStart
from seamless_daemon.stream.settings import SAMPLE_RATE

logger = logging.getLogger(__name__)

MEDIAN_WINDOW = 50  # utterances in the running medians


@dataclass(frozen=True)
class UtteranceFigures:
    utterance_id: int
    start_offset_s: float | None  # None: nothing was spoken
    end_offset_s: float | None
    rtf: float
    skipped_steps: int
    audio_s: float
    output_s: float


@dataclass(frozen=True)
class RunningMedians:
    utterances: int
    start_offset_s: float | None
    end_offset_s: float | None
    rtf: float | None
    skipped_steps: int  # total
    dropped_audio_s: float  # total


@dataclass
class _Open:
    start: int
    first_out: int | None = None
    last_out: int | None = None
    output: int = 0


class LatencyBook:
    def __init__(self, window: int = MEDIAN_WINDOW) -> None:
        self._open: dict[int, _Open] = {}
        self._done: deque[UtteranceFigures] = deque(maxlen=window)
        self._skipped = 0
        self._dropped = 0

    def started(self, event: UtteranceStart) -> None:
        self._open[event.utterance_id] = _Open(event.start_sample)

    def played(self, speak: Speak, start: int, end: int) -> None:
        entry = self._open.get(speak.utterance_id)
        if entry is None:
            return
        entry.first_out = start if entry.first_out is None else min(entry.first_out, start)
        entry.last_out = end if entry.last_out is None else max(entry.last_out, end)
        entry.output += end - start

    def dropped(self, samples: int) -> None:
        self._dropped += samples

    def ended(self, event: UtteranceEnd, processing_samples: int) -> UtteranceFigures:
        """Close the utterance once its audio has been played (or it spoke nothing)."""
        entry = self._open.pop(event.utterance_id, _Open(event.start_sample))
        duration = max(1, event.end_sample - event.start_sample)
        figures = UtteranceFigures(
            utterance_id=event.utterance_id,
            start_offset_s=None if entry.first_out is None else (entry.first_out - event.start_sample) / SAMPLE_RATE,
            end_offset_s=None if entry.last_out is None else (entry.last_out - event.end_sample) / SAMPLE_RATE,
            rtf=processing_samples / duration,
            skipped_steps=event.skipped_steps,
            audio_s=duration / SAMPLE_RATE,
            output_s=entry.output / SAMPLE_RATE,
        )
        self._skipped += event.skipped_steps
        self._done.append(figures)
        return figures

    def medians(self) -> RunningMedians:
        def median(values: list[float]) -> float | None:
            return statistics.median(values) if values else None

        done = list(self._done)
        return RunningMedians(
            utterances=len(done),
            start_offset_s=median([f.start_offset_s for f in done if f.start_offset_s is not None]),
            end_offset_s=median([f.end_offset_s for f in done if f.end_offset_s is not None]),
            rtf=median([f.rtf for f in done]),
            skipped_steps=self._skipped,
            dropped_audio_s=self._dropped / SAMPLE_RATE,
        )
