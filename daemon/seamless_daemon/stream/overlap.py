"""The seed's streaming scheme, kept as the ``overlap`` policy.

Audio is cut into fixed chunks (``chunk_s``, 2.0 s) that start every ``chunk_s - overlap_s`` (1.5 s), so
neighbours share ``overlap_s`` (0.5 s). Each chunk is translated on its own, whatever it holds (speech or not),
and its whole translation is committed and spoken — words in the overlap are spoken twice, and words on a chunk
edge are cut in half; that is the scheme, faithfully. A result that comes less than ``min_output_gap_s`` after
the previous output is dropped (reported as :class:`Throttled`). Audio is kept for ``history_s``; a chunk whose
start fell out of it before its turn is reported as :class:`Dropped`. VAD probabilities are ignored.
Each chunk counts as one utterance: its id is the chunk index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seamless_daemon.stream.buffer import SampleBuffer
from seamless_daemon.stream.events import (
    Commit,
    Dropped,
    HypothesisLike,
    PolicyOutput,
    Throttled,
    Translate,
    UtteranceEnd,
    UtteranceStart,
    pieces_text,
)
from seamless_daemon.stream.policy import PolicyResult, StreamStateError
from seamless_daemon.stream.settings import StreamSettings, seconds_to_samples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkBounds:
    index: int
    start: int
    end: int


def chunk_bounds(index: int, chunk: int, hop: int) -> ChunkBounds:
    """Sample range of chunk ``index``."""
    start = index * hop
    return ChunkBounds(index, start, start + chunk)


class OverlapPolicy:
    name = "overlap"

    def __init__(self, settings: StreamSettings | None = None) -> None:
        self.settings = settings if settings is not None else StreamSettings()
        overlap = self.settings.overlap
        self._chunk = seconds_to_samples(overlap.chunk_s)
        self._hop = self._chunk - seconds_to_samples(overlap.overlap_s)
        self._min_gap = seconds_to_samples(overlap.min_output_gap_s)
        self._min_translate = seconds_to_samples(self.settings.min_translate_s)
        self._buffer = SampleBuffer(seconds_to_samples(overlap.history_s))
        self._next_chunk = 0
        self._next_step = 0
        self._pending: dict[int, Translate] = {}
        self._last_output: int | None = None

    @property
    def idle(self) -> bool:
        return not self._pending

    @property
    def skipped_steps(self) -> int:
        return 0

    @property
    def audio_end(self) -> int:
        return self._buffer.end

    def _translate(self, bounds: ChunkBounds, end: int, result: PolicyResult) -> None:
        if not self._buffer.holds(bounds.start):
            result.outputs.append(Dropped(bounds.start, min(end, self._buffer.start)))
            if end <= self._buffer.start:
                return
        audio = self._buffer.slice(bounds.start, end)
        start = end - audio.size
        action = Translate(
            step_id=self._next_step, utterance_id=bounds.index, audio=audio, source_start=start,
            source_end=end, final=True, max_new_tokens=self.settings.budget.for_samples(audio.size),
        )
        self._next_step += 1
        self._pending[action.step_id] = action
        result.outputs.append(UtteranceStart(bounds.index, start))
        result.actions.append(action)

    def push(self, block: np.ndarray, probabilities: Sequence[float], now: int) -> PolicyResult:
        self._buffer.append(block)
        result = PolicyResult()
        while True:
            bounds = chunk_bounds(self._next_chunk, self._chunk, self._hop)
            if bounds.end > self._buffer.end:
                break
            self._next_chunk += 1
            self._translate(bounds, bounds.end, result)
        return result

    def flush(self, now: int) -> PolicyResult:
        """Translate the unfinished last chunk when it holds audio no earlier chunk covered."""
        result = PolicyResult()
        bounds = chunk_bounds(self._next_chunk, self._chunk, self._hop)
        previous_end = bounds.start - self._hop + self._chunk if self._next_chunk > 0 else 0
        if self._buffer.end - max(bounds.start, previous_end) >= self._min_translate:
            self._next_chunk += 1
            self._translate(bounds, self._buffer.end, result)
        return result

    def complete(self, action: Translate, hypothesis: HypothesisLike, now: int) -> list[PolicyOutput]:
        if self._pending.pop(action.step_id, None) is None:
            raise StreamStateError(f"step {action.step_id} is not awaited")
        ids = tuple(int(token) for token in hypothesis.token_ids)
        text = pieces_text(hypothesis.pieces)
        outputs: list[PolicyOutput] = []
        if ids and self._last_output is not None and now - self._last_output < self._min_gap:
            outputs.append(Throttled(action.utterance_id, ids))
            ids, text = (), ""
        elif ids:
            self._last_output = now
            outputs.append(Commit(
                utterance_id=action.utterance_id, step_id=action.step_id, text=text, token_ids=ids,
                start_index=0, source_start=action.source_start, source_end=action.source_end, final=True,
            ))
        outputs.append(UtteranceEnd(
            utterance_id=action.utterance_id, start_sample=action.source_start, end_sample=action.source_end,
            text=text, token_ids=ids, steps=1, skipped_steps=0,
        ))
        return outputs

    def fail(self, action: Translate, message: str) -> list[PolicyOutput]:
        if self._pending.pop(action.step_id, None) is None:
            raise StreamStateError(f"step {action.step_id} is not awaited")
        logger.warning("chunk %d failed: %s", action.utterance_id, message)
        return [UtteranceEnd(
            utterance_id=action.utterance_id, start_sample=action.source_start, end_sample=action.source_end,
            text="", token_ids=(), steps=1, skipped_steps=0, failed=True,
        )]
