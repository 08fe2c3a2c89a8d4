"""Regenerate the fixed speech inputs of the precision self-measurement (run once, from the repository root):

    python export/seamless_export/data/make_inputs.py

Each input is an English word sequence from the toy task's vocabulary (tests/data/toy-s2tt/toy_task.json),
spoken by espeak-ng, resampled to 16 kHz mono, with light seeded noise, stored as 16-bit PCM WAV.
``inputs.json`` lists the files and their word-by-word references per language.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bench"))

from make_speech import NOISE_LEVEL, SAMPLE_RATE, load_vocabulary, speak  # noqa: E402

HERE = Path(__file__).resolve().parent
INDEX_FILE = "inputs.json"
LEAD_SILENCE_S = 0.2
NOISE_SEED = 7
# (file, espeak-ng voice, words per minute, English words)
UTTERANCES = (
    ("speech_1.wav", "en+m3", 150, ("two", "black", "dog", "see", "white", "bird")),
    ("speech_2.wav", "en+f3", 160, ("fifteen", "yellow", "book", "have", "house")),
    ("speech_3.wav", "en+m6", 145, ("cat", "want", "nine", "pink", "apple")),
    ("speech_4.wav", "en-us+m1", 155, ("twelve", "green", "tree", "eat", "red", "car")),
)


def main() -> None:
    langs, vocab = load_vocabulary()
    by_english = {row[0]: row for row in vocab}
    rng = np.random.default_rng(NOISE_SEED)
    silence = np.zeros(int(LEAD_SILENCE_S * SAMPLE_RATE), dtype=np.float32)
    index = []
    for name, voice, speed, words in UTTERANCES:
        audio = np.concatenate([silence, speak(" ".join(words), voice, speed), silence])
        audio = audio + (rng.standard_normal(audio.size) * NOISE_LEVEL).astype(np.float32)
        sf.write(HERE / name, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
        references = {lang: " ".join(by_english[word][column] for word in words) for column, lang in enumerate(langs)}
        index.append({"file": name, "voice": voice, "speed": speed, "references": references})
        print(f"{name}: {audio.size / SAMPLE_RATE:.2f} s")
    (HERE / INDEX_FILE).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
