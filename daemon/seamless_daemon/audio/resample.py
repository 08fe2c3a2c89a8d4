"""Sample-rate conversion with soxr, for whole utterances and for live streams."""

from __future__ import annotations

import logging

import numpy as np
import soxr

logger = logging.getLogger(__name__)

DEFAULT_QUALITY = "HQ"


def resample(samples: np.ndarray, from_rate: int, to_rate: int, quality: str = DEFAULT_QUALITY) -> np.ndarray:
    """Resample a float mono signal from ``from_rate`` to ``to_rate`` Hz; returns float32 (a copy when equal)."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} Hz -> {to_rate} Hz")
    mono = np.asarray(samples, dtype=np.float32)
    if mono.ndim != 1:
        raise ValueError(f"resample takes mono audio (one dimension), got shape {mono.shape}")
    if from_rate == to_rate or mono.size == 0:
        return mono.copy()
    return np.asarray(soxr.resample(mono, from_rate, to_rate, quality=quality), dtype=np.float32)


class StreamResampler:
    """Chunk-by-chunk resampling of one continuous mono stream (keeps soxr's filter state between chunks)."""

    def __init__(self, from_rate: int, to_rate: int, quality: str = DEFAULT_QUALITY) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} Hz -> {to_rate} Hz")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._passthrough = from_rate == to_rate
        self._stream = None if self._passthrough else soxr.ResampleStream(
            from_rate, to_rate, 1, dtype="float32", quality=quality
        )

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk; ``last=True`` flushes what soxr still holds."""
        mono = np.ascontiguousarray(chunk, dtype=np.float32)
        if self._stream is None:
            return mono.copy()
        return self._stream.resample_chunk(mono, last=last)
