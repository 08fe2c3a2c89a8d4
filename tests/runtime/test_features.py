"""The numpy front end against transformers' SeamlessM4TFeatureExtractor."""

from __future__ import annotations

import numpy as np
import pytest
from seamless_daemon.bundle import FeatureSpec
from seamless_daemon.runtime.features import FeatureError, extract_features, mel_filters, min_samples

RATE = 16000
SPEC = FeatureSpec(sampling_rate=RATE, num_mel_bins=80, stride=2, padding_value=0.0)
# Measured max abs difference is 0.0; the bound leaves room for FFT/BLAS builds that round differently.
TOLERANCE = 1e-5


def _signal(kind: str, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    if kind == "noise":
        return (0.1 * rng.standard_normal(samples)).astype(np.float32)
    if kind == "tones":
        return (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)).astype(np.float32)
    quiet = np.zeros(samples, dtype=np.float32)
    quiet[samples // 2 :] = 0.3 * rng.standard_normal(samples - samples // 2)
    return quiet


@pytest.fixture(scope="module")
def extractor():
    transformers = pytest.importorskip("transformers")
    return transformers.SeamlessM4TFeatureExtractor()


@pytest.mark.parametrize(
    ("kind", "samples"),
    [("noise", 560), ("noise", 719), ("tones", 4800), ("half-silent", 16000), ("noise", 16160),
     ("tones", 16321), ("half-silent", 48000), ("noise", 192000)],
)
def test_features_match_transformers(extractor, kind: str, samples: int) -> None:
    waveform = _signal(kind, samples, seed=samples)
    ours = extract_features(waveform, SPEC)
    theirs = extractor(waveform, sampling_rate=RATE, return_tensors="np")
    assert ours.input_features.shape == theirs["input_features"].shape
    assert ours.input_features.dtype == np.float32
    assert np.abs(ours.input_features - theirs["input_features"]).max() <= TOLERANCE
    np.testing.assert_array_equal(ours.attention_mask, theirs["attention_mask"])


def test_odd_frame_count_masks_the_padded_pair(extractor) -> None:
    waveform = _signal("noise", 400 + 100 * 160, seed=1)  # 101 fbank frames
    ours = extract_features(waveform, SPEC)
    assert ours.attention_mask[0, -1] == 0 and ours.attention_mask[0, :-1].all()


def test_mel_filters_match_transformers() -> None:
    audio_utils = pytest.importorskip("transformers.audio_utils")
    theirs = audio_utils.mel_filter_bank(
        num_frequency_bins=257, num_mel_filters=80, min_frequency=20, max_frequency=RATE // 2,
        sampling_rate=RATE, norm=None, mel_scale="kaldi", triangularize_in_mel_space=True,
    )
    np.testing.assert_array_equal(mel_filters(80, RATE), theirs)


def test_too_short_audio_is_refused() -> None:
    with pytest.raises(FeatureError, match="too short"):
        extract_features(np.zeros(min_samples() - 1, dtype=np.float32), SPEC)


def test_multichannel_input_is_refused() -> None:
    with pytest.raises(FeatureError, match="mono"):
        extract_features(np.zeros((2, RATE), dtype=np.float32), SPEC)


def test_non_finite_samples_are_refused() -> None:
    waveform = np.zeros(RATE, dtype=np.float32)
    waveform[10] = np.nan
    with pytest.raises(FeatureError, match="NaN"):
        extract_features(waveform, SPEC)
