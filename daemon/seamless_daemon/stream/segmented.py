"""Policies on VAD utterances: ``vad`` (translate each utterance when it ends) and ``agreement``
(re-translate the growing utterance every step, commit what the last two hypotheses agree on, commit the rest at
the end).

Both keep the recent audio in a bounded buffer (the longest utterance plus padding and a margin), segment it with
:class:`~seamless_daemon.stream.segmenter.Segmenter`, and number utterances and translation steps from 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seamless_daemon.stream.agreement import AgreementStep, LocalAgreement
from seamless_daemon.stream.buffer import SampleBuffer
from seamless_daemon.stream.events import (
    Commit,
    Dropped,
    HypothesisLike,
    Partial,
    PolicyOutput,
    Translate,
    UtteranceEnd,
    UtteranceStart,
    pieces_text,
)
from seamless_daemon.stream.policy import PolicyResult, StreamStateError
from seamless_daemon.stream.scheduler import StepScheduler
from seamless_daemon.stream.segmenter import SegmentEnd, Segmenter, SegmentStart
from seamless_daemon.stream.settings import VAD_WINDOW, StreamSettings, seconds_to_samples

logger = logging.getLogger(__name__)

BUFFER_MARGIN_S = 2.0  # audio kept beyond the longest utterance and its padding


@dataclass
class _Utterance:
    utterance_id: int
    start: int
    agreement: LocalAgreement
    scheduler: StepScheduler
    steps: int = 0
    end: int | None = None  # set when the utterance has ended (its final step is awaited)
    forced_cut: bool = False
    pending: set[int] = field(default_factory=set)  # step ids awaited


class SegmentedPolicy:
    """Shared machinery; subclasses decide whether intermediate steps run (``intermediate``)."""

    name = "segmented"
    intermediate = False

    def __init__(self, settings: StreamSettings | None = None) -> None:
        self.settings = settings if settings is not None else StreamSettings()
        seg = self.settings.segmenter
        self._segmenter = Segmenter(seg)
        capacity = seconds_to_samples(seg.max_utterance_s + seg.pre_roll_s + seg.post_roll_s + BUFFER_MARGIN_S)
        self._buffer = SampleBuffer(capacity)
        self._step = seconds_to_samples(self.settings.agreement.step_s)
        self._max_lag = seconds_to_samples(self.settings.agreement.max_lag_s)
        self._min_translate = seconds_to_samples(self.settings.min_translate_s)
        self._utterances: dict[int, _Utterance] = {}
        self._active: _Utterance | None = None
        self._next_utterance = 0
        self._next_step = 0
        self._skipped_total = 0

    @property
    def idle(self) -> bool:
        return self._active is None and not self._utterances

    @property
    def skipped_steps(self) -> int:
        return self._skipped_total

    @property
    def audio_end(self) -> int:
        return self._buffer.end

    def push(self, block: np.ndarray, probabilities: Sequence[float], now: int) -> PolicyResult:
        self._buffer.append(block)
        windows = self._segmenter.windows_fed + len(probabilities)
        if windows * VAD_WINDOW > self._buffer.end:
            raise ValueError(f"{windows} VAD windows but only {self._buffer.end} samples of audio")
        result = PolicyResult()
        for probability in probabilities:
            for event in self._segmenter.feed(float(probability)):
                if isinstance(event, SegmentStart):
                    self._open(event.sample, result)
                elif isinstance(event, SegmentEnd):
                    self._close(event.sample, event.forced, result)
        if self.intermediate and self._active is not None:
            self._maybe_step(self._active, now, result)
        return result

    def flush(self, now: int) -> PolicyResult:
        result = PolicyResult()
        if self._active is not None:
            self._segmenter.reset()
            self._close(self._buffer.end, False, result)
        return result

    def _open(self, start: int, result: PolicyResult) -> None:
        utterance = _Utterance(
            utterance_id=self._next_utterance,
            start=start,
            agreement=LocalAgreement(self.settings.agreement.word_boundary),
            scheduler=StepScheduler(self._step, self._max_lag),
        )
        self._next_utterance += 1
        utterance.scheduler.restart(start)
        self._utterances[utterance.utterance_id] = utterance
        self._active = utterance
        result.outputs.append(UtteranceStart(utterance.utterance_id, start))

    def _audio(self, start: int, end: int, result: PolicyResult) -> np.ndarray:
        if not self._buffer.holds(start):
            result.outputs.append(Dropped(start, self._buffer.start))
        return self._buffer.slice(start, end)

    def _translate(self, utterance: _Utterance, end: int, final: bool, result: PolicyResult) -> None:
        audio = self._audio(utterance.start, end, result)
        action = Translate(
            step_id=self._next_step,
            utterance_id=utterance.utterance_id,
            audio=audio,
            source_start=utterance.start,
            source_end=end,
            final=final,
            prefix_ids=utterance.agreement.committed,
            max_new_tokens=self.settings.budget.for_samples(audio.size),
        )
        self._next_step += 1
        utterance.steps += 1
        utterance.pending.add(action.step_id)
        result.actions.append(action)

    def _close(self, end: int, forced: bool, result: PolicyResult) -> None:
        utterance = self._active
        if utterance is None:
            return
        self._active = None
        utterance.end = end
        utterance.forced_cut = forced
        if end - utterance.start >= self._min_translate:
            self._translate(utterance, end, True, result)
        else:
            result.outputs.extend(self._finish(utterance, failed=False))

    def _maybe_step(self, utterance: _Utterance, now: int, result: PolicyResult) -> None:
        decision = utterance.scheduler.decide(self._buffer.end, now)
        self._skipped_total += decision.skipped
        if decision.run and self._buffer.end - utterance.start >= self._min_translate:
            self._translate(utterance, self._buffer.end, False, result)

    def _lookup(self, action: Translate) -> _Utterance:
        utterance = self._utterances.get(action.utterance_id)
        if utterance is None or action.step_id not in utterance.pending:
            raise StreamStateError(f"step {action.step_id} of utterance {action.utterance_id} is not awaited")
        utterance.pending.discard(action.step_id)
        return utterance

    def _commit(self, utterance: _Utterance, action: Translate, step: AgreementStep) -> list[PolicyOutput]:
        if not step.new_ids:
            return []
        return [Commit(
            utterance_id=utterance.utterance_id, step_id=action.step_id, text=pieces_text(step.new_pieces),
            token_ids=step.new_ids, start_index=step.start_index, source_start=action.source_start,
            source_end=action.source_end, final=action.final,
        )]

    def _finish(self, utterance: _Utterance, failed: bool) -> list[PolicyOutput]:
        utterance.agreement.close()
        self._utterances.pop(utterance.utterance_id, None)
        end = utterance.end if utterance.end is not None else self._buffer.end
        return [UtteranceEnd(
            utterance_id=utterance.utterance_id, start_sample=utterance.start, end_sample=end,
            text=pieces_text(utterance.agreement.committed_pieces), token_ids=utterance.agreement.committed,
            steps=utterance.steps, skipped_steps=utterance.scheduler.skipped, forced_cut=utterance.forced_cut,
            failed=failed,
        )]

    def complete(self, action: Translate, hypothesis: HypothesisLike, now: int) -> list[PolicyOutput]:
        utterance = self._lookup(action)
        ids, pieces = list(hypothesis.token_ids), list(hypothesis.pieces)
        if action.final:
            outputs = self._commit(utterance, action, utterance.agreement.finish(ids, pieces))
            return outputs + self._finish(utterance, failed=False)
        if utterance.end is not None:
            return []  # the utterance ended while this step ran; its final step decides
        step = utterance.agreement.update(ids, pieces, hypothesis.ended_on_eos)
        outputs = self._commit(utterance, action, step)
        outputs.append(Partial(utterance.utterance_id, pieces_text(step.unstable_pieces), step.unstable_ids))
        return outputs

    def fail(self, action: Translate, message: str) -> list[PolicyOutput]:
        utterance = self._lookup(action)
        logger.warning("utterance %d step %d failed: %s", utterance.utterance_id, action.step_id, message)
        if action.final:
            return self._finish(utterance, failed=True)
        return []


class VadPolicy(SegmentedPolicy):
    """Translate each VAD utterance once, when it ends."""

    name = "vad"
    intermediate = False


class AgreementPolicy(SegmentedPolicy):
    """Re-translate the growing utterance every step; commit the LocalAgreement-2 prefix."""

    name = "agreement"
    intermediate = True
