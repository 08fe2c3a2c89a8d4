"""Audio as it crosses the control socket.

* ``translate`` requests carry a whole WAV file, base64-encoded; :func:`decode_wav_bytes` reads it in memory
  (the daemon never opens a path it is sent).
* ``translate`` results carry mono 16-bit signed little-endian PCM, base64-encoded (``audio_format``
  ``pcm_s16le``): :func:`encode_pcm16_b64` on the daemon side, :func:`decode_pcm16_b64` on the client side.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import wave
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

AUDIO_FORMAT = "pcm_s16le"
PCM16_MAX = 32767
PCM16_BYTES = 2
RIFF_MAGIC = (b"RIFF", b"RF64")
WAVE_MAGIC = b"WAVE"
WAVE_MAGIC_OFFSET = 8
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000


class AudioDecodeError(ValueError):
    """Audio bytes that cannot be used; the message is one line."""


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def decode_b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise AudioDecodeError(f"{what} is not valid base64") from None


def decode_wav_bytes(data: bytes, max_seconds: float) -> DecodedAudio:
    """A WAV file's bytes → mono float32 samples. Multi-channel audio is averaged to mono."""
    if len(data) < WAVE_MAGIC_OFFSET + len(WAVE_MAGIC) or data[:4] not in RIFF_MAGIC or \
            data[WAVE_MAGIC_OFFSET:WAVE_MAGIC_OFFSET + len(WAVE_MAGIC)] != WAVE_MAGIC:
        raise AudioDecodeError("audio is not a WAV file (no RIFF/WAVE header)")
    import soundfile  # deferred: libsndfile is only needed for this command

    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError(f"undecodable WAV: {' '.join(str(exc).split())}") from None
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            f"WAV sample rate {info.samplerate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    if info.frames > max_seconds * info.samplerate:
        raise AudioDecodeError(
            f"WAV is {info.frames / info.samplerate:.1f} s long, longer than the {max_seconds:g} s limit"
        )
    try:
        frames, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError(f"undecodable WAV: {' '.join(str(exc).split())}") from None
    if frames.shape[0] == 0:
        raise AudioDecodeError("WAV holds no samples")
    mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    return DecodedAudio(samples=np.ascontiguousarray(mono, dtype=np.float32), sample_rate=int(rate))


def _to_pcm16(samples: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return np.round(clipped * PCM16_MAX).astype("<i2")


def encode_pcm16_b64(samples: np.ndarray) -> str:
    """Float samples in [-1, 1] → base64 of mono 16-bit little-endian PCM (values outside are clipped)."""
    return base64.b64encode(_to_pcm16(samples).tobytes()).decode("ascii")


def decode_pcm16_b64(text: str) -> np.ndarray:
    """Inverse of :func:`encode_pcm16_b64`: float32 samples in [-1, 1]."""
    raw = decode_b64(text, "audio_b64")
    if len(raw) % PCM16_BYTES:
        raise AudioDecodeError("audio_b64 holds an odd number of bytes for 16-bit PCM")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / PCM16_MAX


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float samples → a 16-bit PCM WAV file's bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(PCM16_BYTES)
        writer.setframerate(sample_rate)
        writer.writeframes(_to_pcm16(samples).tobytes())
    return buffer.getvalue()
