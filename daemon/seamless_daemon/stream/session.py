"""One live stream: a policy, a VAD and a translation backend driven together on the caller's clock.

The session is the code both the daemon and the streaming simulator run. It takes audio blocks, gets the VAD
probabilities of the windows they complete, hands both to the policy, runs every translation the policy asks for
through the backend right away (nothing is queued), hands the hypotheses back, and synthesises speech for every
commit — and only for the newly committed tokens. Outputs come back stamped with the stream clock.

The clock is a callable returning a sample count: the daemon's is the number of samples captured so far (it runs
on while the backend works), the simulator's is virtual. Processing time per utterance is measured as clock time
spent in backend calls.

Backends and VADs are duck-typed (:class:`TranslationBackend`, :class:`VadFeed`), so this module imports no
runtime code; ``seamless_daemon.runtime.incremental.IncrementalTranslator`` is a backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from seamless_daemon.stream.events import (
    Commit,
    Dropped,
    HypothesisLike,
    PolicyOutput,
    Speak,
    Stamped,
    StreamFailure,
    Translate,
    UtteranceEnd,
)
from seamless_daemon.stream.policy import PolicyResult, StreamPolicy

logger = logging.getLogger(__name__)


class SpeechLike(Protocol):
    @property
    def waveform(self) -> np.ndarray: ...

    @property
    def sample_rate(self) -> int: ...


class TranslationBackend(Protocol):
    def hypothesize(self, waveform: np.ndarray, tgt_lang: str, prefix_ids: Sequence[int] = (),
                    max_new_tokens: int | None = None) -> Any: ...

    def speak(self, hypothesis: Any, start: int, end: int, speaker: int = 0) -> SpeechLike: ...


VadFeed = Callable[[np.ndarray], Sequence[float]]


@dataclass(frozen=True)
class Target:
    tgt_lang: str
    speaker: int = 0


@dataclass
class SessionCounters:
    steps: int = 0
    failures: int = 0
    dropped_samples: int = 0
    processing_samples: dict[int, int] = field(default_factory=dict)  # per utterance: clock spent in backend


class StreamSession:
    def __init__(self, policy: StreamPolicy, backend: TranslationBackend, vad: VadFeed | None,
                 clock: Callable[[], int], target: Target) -> None:
        self.policy = policy
        self.backend = backend
        self._vad = vad
        self._clock = clock
        self._target = target
        self.counters = SessionCounters()

    @property
    def target(self) -> Target:
        return self._target

    @property
    def idle(self) -> bool:
        return self.policy.idle

    def push(self, block: np.ndarray) -> list[Stamped]:
        samples = np.asarray(block, dtype=np.float32).reshape(-1)
        probabilities = self._vad(samples) if self._vad is not None else ()
        return self._run(self.policy.push(samples, probabilities, self._clock()))

    def flush(self) -> list[Stamped]:
        """End the open utterance now: what was heard is translated and spoken; the policy is left idle."""
        return self._run(self.policy.flush(self._clock()))

    def set_target(self, target: Target) -> list[Stamped]:
        """Switch language or speaker: the open utterance is finished in the old target first."""
        stamped = self.flush()
        self._target = target
        return stamped

    def _stamp(self, outputs: Sequence[PolicyOutput | Speak | StreamFailure]) -> list[Stamped]:
        now = self._clock()
        stamped = []
        for output in outputs:
            if isinstance(output, Dropped):
                self.counters.dropped_samples += output.end_sample - output.start_sample
            stamped.append(Stamped(now, output))
        return stamped

    def _charge(self, utterance_id: int, began: int) -> None:
        spent = self._clock() - began
        self.counters.processing_samples[utterance_id] = self.counters.processing_samples.get(utterance_id, 0) + spent

    def _run(self, result: PolicyResult) -> list[Stamped]:
        stamped = self._stamp(result.outputs)
        for action in result.actions:
            stamped.extend(self._execute(action))
        return stamped

    def _execute(self, action: Translate) -> list[Stamped]:
        self.counters.steps += 1
        began = self._clock()
        try:
            hypothesis: HypothesisLike = self.backend.hypothesize(
                action.audio, self._target.tgt_lang, action.prefix_ids, action.max_new_tokens)
        except Exception as err:  # a backend failure must not stop the stream; it becomes an error output
            logger.exception("translation step %d failed", action.step_id)
            self._charge(action.utterance_id, began)
            return self._failed(action, err)
        self._charge(action.utterance_id, began)
        stamped: list[Stamped] = []
        for output in self.policy.complete(action, hypothesis, self._clock()):
            stamped.extend(self._stamp([output]))
            if isinstance(output, Commit):
                stamped.extend(self._speak(output, hypothesis))
        return stamped

    def _failed(self, action: Translate, err: Exception) -> list[Stamped]:
        self.counters.failures += 1
        failure = StreamFailure(action.utterance_id, action.step_id, action.final, str(err).splitlines()[0]
                                if str(err) else type(err).__name__)
        return self._stamp([failure, *self.policy.fail(action, failure.message)])

    def _speak(self, commit: Commit, hypothesis: HypothesisLike) -> list[Stamped]:
        began = self._clock()
        try:
            speech = self.backend.speak(hypothesis, commit.start_index, commit.end_index, self._target.speaker)
        except Exception as err:  # the text stays committed; only its speech is lost
            logger.exception("speech for utterance %d failed", commit.utterance_id)
            self._charge(commit.utterance_id, began)
            self.counters.failures += 1
            return self._stamp([StreamFailure(commit.utterance_id, commit.step_id, commit.final, str(err))])
        self._charge(commit.utterance_id, began)
        waveform = np.asarray(speech.waveform, dtype=np.float32)
        return self._stamp([Speak(commit.utterance_id, commit, waveform, int(speech.sample_rate), self._clock())])


def utterance_ends(stamped: Sequence[Stamped]) -> list[UtteranceEnd]:
    return [item.output for item in stamped if isinstance(item.output, UtteranceEnd)]
