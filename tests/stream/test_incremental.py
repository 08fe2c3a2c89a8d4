"""Text-only hypotheses and speech for committed token ranges, on the trained toy bundle."""

from __future__ import annotations

import numpy as np
import pytest
from make_speech import make_recording
from stream_helpers import ToyRuntime


@pytest.fixture(scope="module")
def sentence(espeak: str) -> np.ndarray:
    recording = make_recording(sentences=1, seed=5)
    only = recording.sentences[0]
    return recording.audio[only.start - 1600 : only.end + 1600]


def test_hypothesis_matches_complete_translation(toy_runtime: ToyRuntime, sentence: np.ndarray) -> None:
    complete = toy_runtime.translator.translate(sentence, "fra")
    hypothesis = toy_runtime.incremental.hypothesize(sentence, "fra")
    assert hypothesis.ended_on_eos and complete.ended_on_eos
    assert list(hypothesis.token_ids) == complete.text_ids[2:-1]
    assert "".join(hypothesis.pieces).replace("▁", " ").strip() == complete.text


def test_forced_prefix_is_kept(toy_runtime: ToyRuntime, sentence: np.ndarray) -> None:
    free = toy_runtime.incremental.hypothesize(sentence, "fra")
    prefix = free.token_ids[:2]
    forced = toy_runtime.incremental.hypothesize(sentence, "spa", prefix_ids=prefix)
    assert forced.token_ids[:2] == prefix


def test_speech_of_all_tokens_equals_complete_mode(toy_runtime: ToyRuntime, sentence: np.ndarray) -> None:
    complete = toy_runtime.translator.translate(sentence, "fra", speaker=1)
    hypothesis = toy_runtime.incremental.hypothesize(sentence, "fra")
    speech = toy_runtime.incremental.speak(hypothesis, 0, len(hypothesis.token_ids), speaker=1)
    assert speech.waveform.size == complete.waveform.size
    np.testing.assert_allclose(speech.waveform, complete.waveform, atol=1e-5)


def test_speech_for_a_later_range_covers_only_those_tokens(toy_runtime: ToyRuntime, sentence: np.ndarray) -> None:
    hypothesis = toy_runtime.incremental.hypothesize(sentence, "fra")
    count = len(hypothesis.token_ids)
    assert count >= 4
    whole = toy_runtime.incremental.speak(hypothesis, 0, count)
    head = toy_runtime.incremental.speak(hypothesis, 0, count // 2)
    tail = toy_runtime.incremental.speak(hypothesis, count // 2, count)
    assert 0 < head.waveform.size < whole.waveform.size
    assert 0 < tail.waveform.size < whole.waveform.size
    with pytest.raises(ValueError):
        toy_runtime.incremental.speak(hypothesis, count, count)
