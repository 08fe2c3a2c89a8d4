"""Signals and measurements shared by the audio tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MODEL_RATE = 16000
SETTLE_S = 0.1  # the first ~100 ms after a stream opens are unreliable


def chirp(seconds: float, rate: int = MODEL_RATE, f0: float = 200.0, f1: float = 3000.0) -> np.ndarray:
    """A linear sine sweep at half scale: it correlates with itself at one lag only."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t * t))).astype(np.float32)


@dataclass(frozen=True)
class Match:
    lag: int  # where ``reference`` starts inside ``recorded``
    r: float  # Pearson correlation at that lag, after the unreliable first SETTLE_S


def best_match(recorded: np.ndarray, reference: np.ndarray, rate: int = MODEL_RATE) -> Match:
    """Locate ``reference`` inside ``recorded`` by FFT cross-correlation and score the aligned part."""
    if recorded.size < reference.size:
        return Match(-1, 0.0)
    n = int(2 ** np.ceil(np.log2(recorded.size + reference.size)))
    xc = np.fft.irfft(np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(np.abs(xc[: recorded.size - reference.size + 1])))
    skip = int(SETTLE_S * rate)
    seg = recorded[lag + skip : lag + reference.size]
    return Match(lag, float(np.corrcoef(seg, reference[skip : skip + seg.size])[0, 1]))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def collect(read: Callable[[float], np.ndarray], samples: int, deadline_s: float = 10.0) -> np.ndarray:
    """Call ``read(timeout)`` until ``samples`` samples arrived or ``deadline_s`` passed."""
    chunks: list[np.ndarray] = []
    total = 0
    end = time.monotonic() + deadline_s
    while total < samples and time.monotonic() < end:
        chunk = read(0.1)
        chunks.append(chunk)
        total += chunk.size
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def wait_until(predicate: Callable[[], bool], deadline_s: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``deadline_s`` passed (a deadline, not a timing assertion)."""
    end = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
    return True
