"""WAV files in and out: any rate, channel count and sample format in; mono float32 in memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

WAV_FORMATS = ("WAV", "WAVEX", "RF64")
OUTPUT_SUBTYPES = ("PCM_16", "FLOAT")
DEFAULT_SUBTYPE = "PCM_16"


class WavError(ValueError):
    """A WAV file that cannot be read or written; the one-line message names the file."""


@dataclass(frozen=True)
class WavAudio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    channels: int  # channel count of the file (the samples are their mean)

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_wav(path: str | Path) -> WavAudio:
    """Read a WAV file and mix its channels down to float32 mono."""
    wav_path = Path(path)
    if not wav_path.is_file():
        raise WavError(f"{wav_path}: no such file")
    try:
        info = sf.info(str(wav_path))
        if info.format not in WAV_FORMATS:
            raise WavError(f"{wav_path}: not a WAV file (format {info.format})")
        data, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise WavError(f"{wav_path}: not a readable WAV file ({_first_line(err)})") from None
    except (OSError, RuntimeError) as err:
        raise WavError(f"{wav_path}: cannot read ({_first_line(err)})") from None
    if data.shape[0] == 0:
        raise WavError(f"{wav_path}: WAV file holds no audio samples")
    channels = int(data.shape[1])
    mono = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
    return WavAudio(samples=np.ascontiguousarray(mono, dtype=np.float32), sample_rate=int(rate), channels=channels)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int, subtype: str = DEFAULT_SUBTYPE) -> Path:
    """Write mono float samples as a WAV file (16-bit PCM by default, ``FLOAT`` for 32-bit float)."""
    wav_path = Path(path)
    if subtype not in OUTPUT_SUBTYPES:
        raise WavError(f"{wav_path}: unsupported sample format {subtype!r} (choose from {', '.join(OUTPUT_SUBTYPES)})")
    mono = np.asarray(samples, dtype=np.float32)
    if mono.ndim != 1:
        raise WavError(f"{wav_path}: can only write mono audio, got shape {mono.shape}")
    try:
        sf.write(str(wav_path), mono, sample_rate, subtype=subtype, format="WAV")
    except (sf.LibsndfileError, OSError, RuntimeError) as err:
        raise WavError(f"{wav_path}: cannot write ({_first_line(err)})") from None
    return wav_path
