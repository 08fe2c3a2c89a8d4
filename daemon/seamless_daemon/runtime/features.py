"""Speech front end: Kaldi-style log-mel filter banks, normalised and stacked for the speech encoder.

This is a numpy port of what ``SeamlessM4TFeatureExtractor`` computes for one waveform:

1. waveform × 32768 (Kaldi reads 16-bit integers), frames of 400 samples every 160 samples, no centring;
2. per frame: remove the DC offset, pre-emphasis 0.97, povey window, 512-point real FFT, power spectrum;
3. 80 triangular filters on the Kaldi mel scale (20 Hz .. Nyquist), floor at float32 epsilon, natural log;
4. per-bin mean/variance normalisation over the utterance (variance with ddof=1, +1e-7);
5. pad to an even frame count with ``padding_value`` and stack frame pairs → ``(1, T, 160)``; the attention
   mask keeps every second frame's mask, so a padded last pair is masked out.

Measured against transformers 5.23.0's extractor on 0.04–12 s of noise, tones and silence-plus-noise
(tests/runtime/test_features.py): max abs difference 0.0 on ``input_features`` — the arithmetic follows the
same float64/float32 path, including the complex64 spectrum storage — and identical attention masks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from seamless_daemon.bundle import FeatureSpec

logger = logging.getLogger(__name__)

INT16_SCALE = 32768.0  # Kaldi works on 16-bit sample values
FRAME_LENGTH = 400  # 25 ms at 16 kHz
HOP_LENGTH = 160  # 10 ms at 16 kHz
FFT_LENGTH = 512
PREEMPHASIS = 0.97
POVEY_EXPONENT = 0.85
MEL_LOW_HZ = 20.0
MEL_BREAK_HZ = 700.0
MEL_FACTOR = 1127.0
MEL_FLOOR = 1.192092955078125e-07  # float32 machine epsilon, Kaldi's log floor
VARIANCE_EPSILON = 1e-7
VARIANCE_DDOF = 1
PAD_MULTIPLE = 2  # the extractor pads the frame count to a multiple of 2 before stacking
MASK_OFFSET = 1
# Normalisation needs two frames (ddof=1), i.e. 400 + 160 samples.
MIN_FBANK_FRAMES = 2


class FeatureError(ValueError):
    """Audio that cannot be turned into features (the message is one line)."""


@dataclass(frozen=True)
class SpeechFeatures:
    """Encoder input for one utterance."""

    input_features: np.ndarray  # float32 (1, T, num_mel_bins * stride)
    attention_mask: np.ndarray  # int64 (1, T)

    @property
    def num_frames(self) -> int:
        return int(self.input_features.shape[1])


def min_samples() -> int:
    """Fewest waveform samples that give features."""
    return FRAME_LENGTH + (MIN_FBANK_FRAMES - 1) * HOP_LENGTH


def _kaldi_mel(freq: np.ndarray | float) -> np.ndarray:
    return MEL_FACTOR * np.log(1.0 + np.asarray(freq, dtype=np.float64) / MEL_BREAK_HZ)


@lru_cache(maxsize=4)
def mel_filters(num_mel_bins: int, sampling_rate: int) -> np.ndarray:
    """Triangular filters built in mel space, shape ``(FFT_LENGTH // 2 + 1, num_mel_bins)``, float64."""
    num_bins = FFT_LENGTH // 2 + 1
    edges = np.linspace(_kaldi_mel(MEL_LOW_HZ), _kaldi_mel(sampling_rate // 2), num_mel_bins + 2)
    bin_width_hz = sampling_rate / FFT_LENGTH
    bin_mels = _kaldi_mel(bin_width_hz * np.arange(num_bins))
    widths = np.diff(edges)
    offsets = edges[np.newaxis, :] - bin_mels[:, np.newaxis]  # (bins, edges)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return np.maximum(np.zeros(1), np.minimum(rising, falling))


@lru_cache(maxsize=1)
def povey_window() -> np.ndarray:
    """Symmetric povey window: a Hann window raised to 0.85."""
    return np.power(np.hanning(FRAME_LENGTH), POVEY_EXPONENT)


def log_mel_fbank(waveform: np.ndarray, num_mel_bins: int, sampling_rate: int) -> np.ndarray:
    """Log-mel filter bank energies, float32 ``(frames, num_mel_bins)``; ``waveform`` in [-1, 1]."""
    scaled = np.asarray(waveform, dtype=np.float32) * np.float32(INT16_SCALE)
    samples = scaled.astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(samples, FRAME_LENGTH)[::HOP_LENGTH].copy()
    frames -= frames.mean(axis=1, keepdims=True)
    emphasised = frames[:, 1:] - PREEMPHASIS * frames[:, :-1]
    frames[:, 1:] = emphasised
    frames[:, 0] *= 1.0 - PREEMPHASIS
    frames *= povey_window()
    spectrum = np.fft.rfft(frames, n=FFT_LENGTH, axis=1).astype(np.complex64)
    power = np.abs(spectrum, dtype=np.float64) ** 2
    energies = np.maximum(MEL_FLOOR, np.dot(mel_filters(num_mel_bins, sampling_rate).T, power.T))
    return np.log(energies).T.astype(np.float32)


def _normalise(fbank: np.ndarray) -> np.ndarray:
    mean = np.expand_dims(fbank.mean(0), 0)
    variance = np.expand_dims(fbank.var(0, ddof=VARIANCE_DDOF), 0)
    return (fbank - mean) / np.sqrt(variance + VARIANCE_EPSILON)


def _stack(normalised: np.ndarray, spec: FeatureSpec) -> SpeechFeatures:
    """Pad to a multiple of PAD_MULTIPLE, cut to a multiple of the stride, stack ``stride`` frames per row."""
    num_frames, num_bins = normalised.shape
    padded_frames = -(-num_frames // PAD_MULTIPLE) * PAD_MULTIPLE
    kept_frames = padded_frames - padded_frames % spec.stride
    padded = np.full((padded_frames, num_bins), spec.padding_value, dtype=np.float32)
    padded[:num_frames] = normalised
    mask = np.zeros(padded_frames, dtype=np.int64)
    mask[:num_frames] = 1
    stacked = padded[:kept_frames].reshape(1, kept_frames // spec.stride, num_bins * spec.stride)
    # The stacked row's mask is the mask of its frame at offset MASK_OFFSET.
    stacked_mask = mask[:kept_frames][MASK_OFFSET :: spec.stride].reshape(1, -1)
    return SpeechFeatures(input_features=stacked, attention_mask=stacked_mask)


def extract_features(waveform: np.ndarray, spec: FeatureSpec) -> SpeechFeatures:
    """Encoder features for one mono waveform sampled at ``spec.sampling_rate``."""
    samples = np.asarray(waveform)
    if samples.ndim != 1:
        raise FeatureError(f"waveform must be mono (one dimension), got shape {samples.shape}")
    if samples.size < min_samples():
        raise FeatureError(
            f"audio too short: {samples.size} samples, need at least {min_samples()} "
            f"({1000 * min_samples() / spec.sampling_rate:.0f} ms)"
        )
    if not np.all(np.isfinite(samples)):
        raise FeatureError("waveform holds NaN or infinite samples")
    fbank = log_mel_fbank(samples, spec.num_mel_bins, spec.sampling_rate)
    return _stack(_normalise(fbank), spec)
