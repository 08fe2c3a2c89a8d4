"""Play a WAV file on a sound device: ``play_wav.py FILE DEVICE`` (the demo speaks into the virtual microphone)."""

from __future__ import annotations

import sys

import sounddevice as sd
import soundfile as sf


def main(path: str, device: str) -> None:
    audio, rate = sf.read(path, dtype="float32")
    sd.play(audio, rate, device=device, blocking=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
