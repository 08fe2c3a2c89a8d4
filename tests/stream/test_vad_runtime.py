"""The bundle's Silero VAD through ONNX Runtime against the silero_vad package's own TorchScript model."""

from __future__ import annotations

import numpy as np
import pytest
from make_speech import make_recording
from seamless_daemon.runtime.vad import VAD_WINDOW, VadState
from stream_helpers import ToyRuntime

PARITY_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def speech(espeak: str) -> np.ndarray:
    return make_recording(sentences=2, seed=3).audio


def reference_probabilities(audio: np.ndarray) -> np.ndarray:
    torch = pytest.importorskip("torch")
    silero = pytest.importorskip("silero_vad")
    model = silero.load_silero_vad(onnx=False)
    model.reset_states()
    windows = audio.size // VAD_WINDOW
    with torch.no_grad():
        values = [float(model(torch.from_numpy(audio[i * VAD_WINDOW : (i + 1) * VAD_WINDOW].copy()), 16000))
                  for i in range(windows)]
    return np.asarray(values, dtype=np.float32)


def test_matches_silero_reference_on_speech(toy_runtime: ToyRuntime, speech: np.ndarray) -> None:
    ours = toy_runtime.vad.feed(VadState(), speech)
    reference = reference_probabilities(speech)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=PARITY_TOLERANCE)
    # The recording holds speech and pauses: both sides of the threshold are exercised.
    assert (ours > 0.9).mean() > 0.2 and (ours < 0.1).mean() > 0.2


def test_block_size_does_not_change_the_probabilities(toy_runtime: ToyRuntime, speech: np.ndarray) -> None:
    whole = toy_runtime.vad.feed(VadState(), speech)
    state = VadState()
    pieces = [toy_runtime.vad.feed(state, speech[start : start + 320]) for start in range(0, speech.size, 320)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    assert state.windows == whole.size and state.pending.size == speech.size % VAD_WINDOW
