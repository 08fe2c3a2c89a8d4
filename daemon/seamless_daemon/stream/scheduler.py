"""When to run an intermediate re-translation, and when to skip it because processing is behind.

A step is due each time the utterance has grown by ``step`` samples since the last step (run or skipped). When the
audio the step would cover ends more than ``max_lag`` samples before the stream clock (the caller is working
through a backlog), the step is skipped and counted instead of run: the next due step covers the newer audio.
Nothing is ever queued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepDecision:
    run: bool
    skipped: int  # steps skipped by this decision


class StepScheduler:
    def __init__(self, step: int, max_lag: int) -> None:
        if step < 1:
            raise ValueError(f"step must be >= 1 sample, got {step}")
        self.step = step
        self.max_lag = max_lag
        self._last = 0  # audio end of the last step, run or skipped
        self.skipped = 0

    def restart(self, start: int) -> None:
        """A new utterance starting at ``start``: the first step is due one step later."""
        self._last = start
        self.skipped = 0

    def decide(self, audio_end: int, now: int) -> StepDecision:
        """Whether to run a step over the audio up to ``audio_end``, with the stream clock at ``now``."""
        if audio_end - self._last < self.step:
            return StepDecision(run=False, skipped=0)
        self._last = audio_end
        if now - audio_end > self.max_lag:
            self.skipped += 1
            return StepDecision(run=False, skipped=1)
        return StepDecision(run=True, skipped=0)
