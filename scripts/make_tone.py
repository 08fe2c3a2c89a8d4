"""Write a short speech-like test signal (harmonic tones with pauses) as a 16 kHz WAV, for machines without
espeak-ng."""

from __future__ import annotations

import sys

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
SEGMENTS_HZ = (180.0, 220.0, 0.0, 160.0, 240.0)
SEGMENT_SECONDS = 0.6
HARMONICS = 4
AMPLITUDE = 0.2


def main(path: str) -> None:
    t = np.arange(int(SEGMENT_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    parts = []
    for f0 in SEGMENTS_HZ:
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, HARMONICS + 1)) if f0 else 0 * t
        parts.append(AMPLITUDE * tone * np.hanning(t.size))
    sf.write(path, np.concatenate(parts).astype(np.float32), SAMPLE_RATE)


if __name__ == "__main__":
    main(sys.argv[1])
