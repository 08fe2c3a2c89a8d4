"""Speech segmentation on VAD probabilities: one probability per 512-sample window, fed in order.

* Onset: a window at or above ``threshold``. The onset becomes an utterance once speech (windows at or above the
  release threshold ``threshold - release_margin``) has lasted ``min_speech_s``; a shorter burst is forgotten.
  The utterance starts ``pre_roll_s`` before the onset.
* End: ``min_silence_s`` of windows below the release threshold. The utterance ends ``post_roll_s`` after the
  last speech window (never later than the window being fed).
* Maximum length: an utterance that reaches ``max_utterance_s`` is cut at its quietest window (lowest
  probability) within the last ``cut_search_fraction`` of it; speech after the cut is a new utterance.

Boundaries are sample positions (window index × 512).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from seamless_daemon.stream.settings import SAMPLE_RATE, VAD_WINDOW, SegmenterSettings, seconds_to_windows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentStart:
    sample: int


@dataclass(frozen=True)
class SegmentEnd:
    sample: int
    forced: bool  # cut at the maximum length


SegmentEvent = SegmentStart | SegmentEnd


class Segmenter:
    """Turns a sequence of window probabilities into utterance starts and ends."""

    def __init__(self, settings: SegmenterSettings | None = None) -> None:
        self.settings = settings if settings is not None else SegmenterSettings()
        s = self.settings
        self._min_silence = seconds_to_windows(s.min_silence_s)
        self._min_speech = seconds_to_windows(s.min_speech_s)
        self._max_windows = seconds_to_windows(s.max_utterance_s)
        self._pre_roll = round(s.pre_roll_s * SAMPLE_RATE / VAD_WINDOW)
        self._post_roll = round(s.post_roll_s * SAMPLE_RATE / VAD_WINDOW)
        self._window = 0  # index of the next window fed
        self._onset: int | None = None  # window of a tentative onset
        self._start: int | None = None  # first window of the active utterance (padding included)
        self._last_speech = 0  # last window at or above the release threshold
        self._speech_run = 0
        # Probabilities of the active utterance's windows, bounded by the maximum length.
        self._probs: deque[float] = deque(maxlen=self._max_windows)

    @property
    def in_utterance(self) -> bool:
        return self._start is not None

    @property
    def windows_fed(self) -> int:
        return self._window

    def reset(self) -> None:
        """Forget any tentative or active utterance (the caller ends it itself)."""
        self._onset = None
        self._start = None
        self._speech_run = 0
        self._probs.clear()

    def feed(self, probability: float) -> list[SegmentEvent]:
        """Feed the next window's probability; returns the boundaries it decides."""
        index = self._window
        self._window += 1
        if self._start is None:
            return self._idle(index, probability)
        return self._active(index, probability, self._start)

    def _idle(self, index: int, probability: float) -> list[SegmentEvent]:
        s = self.settings
        if self._onset is None:
            if probability >= s.threshold:
                self._onset = index
                self._speech_run = 1
        elif probability >= s.release_threshold:
            self._speech_run += 1
        else:
            self._onset = None
            self._speech_run = 0
        if self._onset is None or self._speech_run < self._min_speech:
            return []
        start = max(0, self._onset - self._pre_roll)
        self._start = start
        self._last_speech = index
        self._onset = None
        self._probs.clear()
        self._probs.extend([1.0] * (index + 1 - start))
        return [SegmentStart(start * VAD_WINDOW)]

    def _active(self, index: int, probability: float, start: int) -> list[SegmentEvent]:
        s = self.settings
        self._probs.append(probability)
        if probability >= s.release_threshold:
            self._last_speech = index
        elif index - self._last_speech >= self._min_silence:
            end = min(index + 1, self._last_speech + 1 + self._post_roll)
            self.reset()
            return [SegmentEnd(end * VAD_WINDOW, forced=False)]
        if index + 1 - start < self._max_windows:
            return []
        return self._cut(index, start)

    def _cut(self, index: int, start: int) -> list[SegmentEvent]:
        """Cut the full-length utterance at its quietest window; what follows starts the next utterance."""
        probs = list(self._probs)
        first = int(len(probs) * (1.0 - self.settings.cut_search_fraction))
        search = probs[first:]
        quietest = first + min(range(len(search)), key=lambda offset: (search[offset], -offset))
        cut = start + quietest + 1  # the quietest window ends the utterance
        cut = min(cut, index)  # keep at least one window for the next utterance
        tail = probs[cut - start:]
        self._start = cut
        self._probs.clear()
        self._probs.extend(tail)
        logger.debug("utterance cut at window %d (maximum length)", cut)
        return [SegmentEnd(cut * VAD_WINDOW, forced=True), SegmentStart(cut * VAD_WINDOW)]
