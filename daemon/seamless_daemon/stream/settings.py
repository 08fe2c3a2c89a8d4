"""Knobs of the streaming policies, as frozen dataclasses with their defaults.

Times are given in seconds here and turned into sample counts at the stream's rate (16 kHz) by the policies.
The ``overlap`` defaults are the seed's numbers. The segmenter defaults follow Silero VAD's own (threshold 0.5,
hysteresis 0.15) with a 0.6 s end-of-utterance silence, a little below SeamlessStreaming's 0.7 s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
VAD_WINDOW = 512  # samples per Silero VAD probability at 16 kHz (32 ms)
POLICIES = ("overlap", "vad", "agreement")
DEFAULT_POLICY = "agreement"
SPACE = "▁"  # SentencePiece word-start marker


def seconds_to_samples(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    return round(seconds * sample_rate)


def seconds_to_windows(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    return max(1, round(seconds * sample_rate / VAD_WINDOW))


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


@dataclass(frozen=True)
class OverlapSettings:
    """The seed's scheme: fixed chunks, each translated on its own."""

    chunk_s: float = 2.0
    overlap_s: float = 0.5
    min_output_gap_s: float = 0.5  # an output closer than this to the previous one is dropped
    history_s: float = 10.0  # audio kept for chunks not yet translated; older audio is dropped

    def __post_init__(self) -> None:
        _positive("overlap.chunk_s", self.chunk_s)
        _positive("overlap.history_s", self.history_s)
        if not 0 <= self.overlap_s < self.chunk_s:
            raise ValueError(f"overlap.overlap_s must be in [0, chunk_s), got {self.overlap_s}")
        if self.min_output_gap_s < 0:
            raise ValueError(f"overlap.min_output_gap_s must be >= 0, got {self.min_output_gap_s}")
        if self.history_s < self.chunk_s:
            raise ValueError(f"overlap.history_s must be >= chunk_s, got {self.history_s}")


@dataclass(frozen=True)
class SegmenterSettings:
    """VAD segmentation of speech probabilities into utterances."""

    threshold: float = 0.5  # a window at or above this is speech
    release_margin: float = 0.15  # speech continues until the probability drops below threshold - margin
    min_silence_s: float = 0.6  # silence that ends an utterance
    min_speech_s: float = 0.25  # shorter bursts are ignored
    max_utterance_s: float = 12.0  # longer speech is cut at the quietest point
    cut_search_fraction: float = 0.5  # the cut is searched in this last fraction of the utterance
    pre_roll_s: float = 0.3  # audio kept before the onset (the VAD reacts a little late to a soft onset)
    post_roll_s: float = 0.1  # audio kept after the last speech window

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(f"segmenter.threshold must be in (0, 1), got {self.threshold}")
        if not 0 <= self.release_margin < self.threshold:
            raise ValueError(f"segmenter.release_margin must be in [0, threshold), got {self.release_margin}")
        for name in ("min_silence_s", "min_speech_s", "max_utterance_s"):
            _positive(f"segmenter.{name}", getattr(self, name))
        if not 0 < self.cut_search_fraction <= 1:
            raise ValueError(f"segmenter.cut_search_fraction must be in (0, 1], got {self.cut_search_fraction}")
        if self.pre_roll_s < 0 or self.post_roll_s < 0:
            raise ValueError(f"segmenter.pre_roll_s and post_roll_s must be >= 0, got {self.pre_roll_s}, "
                             f"{self.post_roll_s}")
        if self.max_utterance_s <= 2 * self.min_speech_s:
            raise ValueError("segmenter.max_utterance_s must be more than twice min_speech_s")

    @property
    def release_threshold(self) -> float:
        return self.threshold - self.release_margin


@dataclass(frozen=True)
class AgreementSettings:
    """LocalAgreement-2 over re-translations of the growing utterance."""

    step_s: float = 0.5  # re-translate whenever the utterance grew by this much
    max_lag_s: float = 0.5  # an intermediate step due on audio older than this (vs. the clock) is skipped
    word_boundary: bool = True  # commit whole words only (until the utterance ends)

    def __post_init__(self) -> None:
        _positive("agreement.step_s", self.step_s)
        if self.max_lag_s < 0:
            raise ValueError(f"agreement.max_lag_s must be >= 0, got {self.max_lag_s}")


@dataclass(frozen=True)
class DecodeBudget:
    """Token limit asked for a stretch of audio: keeps a partial hypothesis from running away."""

    tokens_per_second: float = 8.0
    extra_tokens: int = 8

    def __post_init__(self) -> None:
        _positive("budget.tokens_per_second", self.tokens_per_second)
        if self.extra_tokens < 1:
            raise ValueError(f"budget.extra_tokens must be >= 1, got {self.extra_tokens}")

    def for_samples(self, samples: int, sample_rate: int = SAMPLE_RATE) -> int:
        return int(self.tokens_per_second * samples / sample_rate) + self.extra_tokens


@dataclass(frozen=True)
class StreamSettings:
    policy: str = DEFAULT_POLICY
    overlap: OverlapSettings = field(default_factory=OverlapSettings)
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)
    agreement: AgreementSettings = field(default_factory=AgreementSettings)
    budget: DecodeBudget = field(default_factory=DecodeBudget)
    min_translate_s: float = 0.1  # shorter audio is not sent to the model (it cannot make features)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        _positive("min_translate_s", self.min_translate_s)
