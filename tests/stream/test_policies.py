"""The vad and agreement policies on synthetic audio and probabilities, with scripted hypotheses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from seamless_daemon.stream.events import Commit, Partial, Translate, UtteranceEnd, UtteranceStart
from seamless_daemon.stream.policy import StreamStateError, make_policy
from seamless_daemon.stream.scheduler import StepScheduler
from seamless_daemon.stream.settings import VAD_WINDOW, StreamSettings

RATE = 16000
WORDS = {1: "▁un", 2: "▁deux", 3: "▁trois", 4: "▁quatre", 5: "▁cinq", 6: "▁six"}


@dataclass(frozen=True)
class Hyp:
    token_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    ended_on_eos: bool = True


def growing(action: Translate) -> Hyp:
    """One word per 0.4 s of audio: a well-behaved model on a growing utterance."""
    count = min(len(WORDS), int(action.audio.size / (0.4 * RATE)))
    ids = tuple(range(1, count + 1))
    assert ids[: len(action.prefix_ids)] == action.prefix_ids
    return Hyp(ids, tuple(WORDS[i] for i in ids))


def speech_probabilities(seconds_silence: float, seconds_speech: float, tail: float) -> np.ndarray:
    parts = [(seconds_silence, 0.02), (seconds_speech, 0.95), (tail, 0.02)]
    return np.concatenate([np.full(round(s * RATE / VAD_WINDOW), p, dtype=np.float32) for s, p in parts])


def drive(policy_name: str, probabilities: np.ndarray, lag: int = 0, respond=growing):
    """Feed one window per push; ``lag`` puts the clock that far ahead of the audio."""
    policy = make_policy(StreamSettings(policy=policy_name))
    outputs, actions = [], []
    for probability in probabilities:
        end = policy.audio_end + VAD_WINDOW
        result = policy.push(np.zeros(VAD_WINDOW, dtype=np.float32), [float(probability)], now=end + lag)
        outputs.extend(result.outputs)
        for action in result.actions:
            actions.append(action)
            outputs.extend(policy.complete(action, respond(action), now=end + lag))
    result = policy.flush(now=policy.audio_end)
    outputs.extend(result.outputs)
    for action in result.actions:
        actions.append(action)
        outputs.extend(policy.complete(action, respond(action), now=policy.audio_end))
    return policy, outputs, actions


def test_vad_policy_translates_each_utterance_once_when_it_ends() -> None:
    policy, outputs, actions = drive("vad", speech_probabilities(1.0, 2.4, 1.0))
    assert len(actions) == 1 and actions[0].final
    commits = [o for o in outputs if isinstance(o, Commit)]
    assert [c.token_ids for c in commits] == [(1, 2, 3, 4, 5, 6)]
    assert isinstance(outputs[0], UtteranceStart) and isinstance(outputs[-1], UtteranceEnd)
    assert policy.idle


def test_agreement_commits_while_speaking_and_never_twice() -> None:
    speech_end = round(3.4 * RATE)
    policy, outputs, actions = drive("agreement", speech_probabilities(1.0, 2.4, 1.0))
    assert sum(not a.final for a in actions) >= 4 and actions[-1].final
    commits = [o for o in outputs if isinstance(o, Commit)]
    positions = [i for c in commits for i in range(c.start_index, c.end_index)]
    assert positions == list(range(len(positions)))  # contiguous, no position twice
    assert [t for c in commits for t in c.token_ids] == [1, 2, 3, 4, 5, 6]
    assert any(not c.final and c.source_end < speech_end for c in commits)
    assert any(isinstance(o, Partial) for o in outputs)
    end = next(o for o in outputs if isinstance(o, UtteranceEnd))
    assert end.token_ids == (1, 2, 3, 4, 5, 6) and end.skipped_steps == 0
    assert policy.idle


def test_agreement_skips_intermediate_steps_when_behind_and_still_finishes() -> None:
    policy, outputs, actions = drive("agreement", speech_probabilities(1.0, 2.4, 1.0), lag=RATE)
    assert all(a.final for a in actions)
    end = next(o for o in outputs if isinstance(o, UtteranceEnd))
    assert end.skipped_steps >= 4 and policy.skipped_steps == end.skipped_steps
    assert end.token_ids == (1, 2, 3, 4, 5, 6)


def test_scheduler_never_queues() -> None:
    scheduler = StepScheduler(step=8000, max_lag=8000)
    scheduler.restart(0)
    assert not scheduler.decide(4000, 4000).run
    assert scheduler.decide(8000, 8000).run
    decision = scheduler.decide(40000, 80000)  # far behind: one skip, not four queued steps
    assert not decision.run and decision.skipped == 1
    assert scheduler.decide(48000, 48000).run


def test_flush_in_the_middle_of_an_utterance_translates_what_was_heard() -> None:
    policy = make_policy(StreamSettings(policy="agreement"))
    for probability in speech_probabilities(0.5, 1.5, 0.0):
        result = policy.push(np.zeros(VAD_WINDOW, dtype=np.float32), [float(probability)], now=policy.audio_end)
        for action in result.actions:
            policy.complete(action, growing(action), now=policy.audio_end)
    assert not policy.idle
    result = policy.flush(now=policy.audio_end)
    (final,) = result.actions
    assert final.final and final.source_end == policy.audio_end
    outputs = policy.complete(final, growing(final), now=policy.audio_end)
    assert isinstance(outputs[-1], UtteranceEnd)
    assert policy.idle
    assert policy.flush(now=policy.audio_end).actions == []


def test_failed_final_step_ends_the_utterance_and_unknown_steps_are_refused() -> None:
    policy = make_policy(StreamSettings(policy="vad"))
    final = None
    for probability in speech_probabilities(0.5, 1.0, 1.0):
        result = policy.push(np.zeros(VAD_WINDOW, dtype=np.float32), [float(probability)], now=policy.audio_end)
        final = result.actions[0] if result.actions else final
    assert final is not None
    (end,) = policy.fail(final, "boom")
    assert isinstance(end, UtteranceEnd) and end.failed
    assert policy.idle
    with pytest.raises(StreamStateError):
        policy.complete(final, Hyp((), ()), now=0)


def test_more_probabilities_than_audio_is_refused() -> None:
    policy = make_policy(StreamSettings(policy="agreement"))
    with pytest.raises(ValueError):
        policy.push(np.zeros(100, dtype=np.float32), [0.5], now=100)
