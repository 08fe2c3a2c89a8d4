"""The seed's overlap scheme: chunk boundaries, the output gap and the bounded history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from seamless_daemon.stream.events import Commit, Dropped, Throttled, UtteranceEnd
from seamless_daemon.stream.overlap import OverlapPolicy, chunk_bounds
from seamless_daemon.stream.settings import OverlapSettings, StreamSettings

RATE = 16000


@dataclass(frozen=True)
class Hyp:
    token_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    ended_on_eos: bool = True


HYP = Hyp((7, 8), ("▁un", "▁deux"))


def test_seed_defaults() -> None:
    settings = OverlapSettings()
    assert (settings.chunk_s, settings.overlap_s, settings.min_output_gap_s, settings.history_s) == (
        2.0, 0.5, 0.5, 10.0)


def test_chunk_boundaries_overlap_by_half_a_second() -> None:
    bounds = [chunk_bounds(index, 2 * RATE, RATE * 3 // 2) for index in range(4)]
    assert [(b.start, b.end) for b in bounds] == [
        (0, 32000), (24000, 56000), (48000, 80000), (72000, 104000)]


def test_each_full_chunk_is_translated_with_its_audio() -> None:
    policy = OverlapPolicy(StreamSettings(policy="overlap"))
    audio = np.arange(5 * RATE + RATE // 4, dtype=np.float32)
    actions = []
    for start in range(0, audio.size, 320):
        result = policy.push(audio[start : start + 320], (), now=start + 320)
        for action in result.actions:
            actions.append(action)
            policy.complete(action, HYP, now=action.source_end + 8000)
    assert [(a.source_start, a.source_end) for a in actions] == [(0, 32000), (24000, 56000), (48000, 80000)]
    for action in actions:
        assert action.final
        np.testing.assert_array_equal(action.audio, audio[action.source_start : action.source_end])
    # The unfinished chunk holds 0.25 s that no chunk covered: the flush translates it.
    flushed = policy.flush(now=audio.size)
    assert [(a.source_start, a.source_end) for a in flushed.actions] == [(72000, 84000)]


def test_flush_translates_nothing_already_covered() -> None:
    policy = OverlapPolicy(StreamSettings(policy="overlap"))
    result = policy.push(np.zeros(5 * RATE, dtype=np.float32), (), now=5 * RATE)
    for action in result.actions:
        policy.complete(action, HYP, now=5 * RATE)
    assert policy.flush(now=5 * RATE).actions == []


def test_outputs_closer_than_the_gap_are_throttled() -> None:
    policy = OverlapPolicy(StreamSettings(policy="overlap"))
    result = policy.push(np.zeros(4 * RATE, dtype=np.float32), (), now=4 * RATE)
    first, second = result.actions
    assert any(isinstance(o, Commit) for o in policy.complete(first, HYP, now=64000))
    outputs = policy.complete(second, HYP, now=64000 + RATE // 4)
    assert any(isinstance(o, Throttled) for o in outputs)
    assert not any(isinstance(o, Commit) for o in outputs)
    assert any(isinstance(o, UtteranceEnd) for o in outputs)
    assert policy.idle


def test_audio_older_than_the_history_is_dropped() -> None:
    policy = OverlapPolicy(StreamSettings(policy="overlap", overlap=OverlapSettings(history_s=3.0)))
    result = policy.push(np.zeros(6 * RATE, dtype=np.float32), (), now=6 * RATE)
    dropped = [o for o in result.outputs if isinstance(o, Dropped)]
    assert dropped and dropped[0].start_sample == 0
    assert all(action.source_start >= 3 * RATE for action in result.actions)
