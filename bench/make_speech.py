"""Multi-sentence English recordings with pauses, from the toy task's vocabulary, spoken by espeak-ng.

    python bench/make_speech.py OUT.wav [--sentences 5] [--seed 0] [--voice en+m3]

Each sentence is a random sequence of vocabulary words, synthesised on its own, resampled to 16 kHz and joined
with silences; the reference translation of a sentence is its words translated word by word (the toy task).
Also importable: :func:`make_recording` returns the audio with the true sentence boundaries and references.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
TASK_FILE = Path(__file__).resolve().parent.parent / "tests" / "data" / "toy-s2tt" / "toy_task.json"
DEFAULT_VOICES = ("en+m3", "en+m6", "en+f3")
LEAD_SILENCE_S = 0.5
PAUSE_RANGE_S = (1.0, 1.6)
WORD_RANGE = (5, 8)
SPEED_RANGE = (130, 150)
NOISE_LEVEL = 0.002  # light background noise, as in the toy model's training data
TRIM_LEVEL = 1e-3  # espeak's own leading/trailing silence below this is trimmed


@dataclass(frozen=True)
class Sentence:
    words: list[str]  # English
    references: dict[str, str]  # language -> reference translation
    start: int  # samples
    end: int
    voice: str
    speed: int

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


@dataclass(frozen=True)
class Recording:
    audio: np.ndarray
    sentences: list[Sentence]

    def reference(self, lang: str) -> str:
        return " ".join(sentence.references[lang] for sentence in self.sentences)


def load_vocabulary(path: Path = TASK_FILE) -> tuple[list[str], list[list[str]]]:
    task = json.loads(path.read_text())
    return list(task["langs"]), [list(row) for row in task["vocab"]]


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True,
                       capture_output=True)
        audio, rate = sf.read(wav, dtype="float32")
    audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > TRIM_LEVEL)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def make_recording(sentences: int = 5, seed: int = 0, voices: tuple[str, ...] = DEFAULT_VOICES) -> Recording:
    langs, vocab = load_vocabulary()
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(LEAD_SILENCE_S * SAMPLE_RATE), dtype=np.float32)]
    position = parts[0].size
    made: list[Sentence] = []
    for index in range(sentences):
        rows = [vocab[int(i)] for i in rng.integers(0, len(vocab), int(rng.integers(WORD_RANGE[0],
                                                                                     WORD_RANGE[1] + 1)))]
        voice = voices[index % len(voices)]
        speed = int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1))
        speech = speak(" ".join(row[0] for row in rows), voice, speed)
        references = {lang: " ".join(row[column] for row in rows) for column, lang in enumerate(langs)}
        made.append(Sentence([row[0] for row in rows], references, position, position + speech.size, voice, speed))
        pause = np.zeros(int(rng.uniform(*PAUSE_RANGE_S) * SAMPLE_RATE), dtype=np.float32)
        parts.extend([speech, pause])
        position += speech.size + pause.size
    audio = np.concatenate(parts)
    audio = audio + (rng.standard_normal(audio.size) * NOISE_LEVEL).astype(np.float32)
    return Recording(audio.astype(np.float32), made)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sentences", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voice", action="append", help="espeak-ng voice (repeat for several)")
    args = parser.parse_args()
    recording = make_recording(args.sentences, args.seed, tuple(args.voice) if args.voice else DEFAULT_VOICES)
    sf.write(args.out, recording.audio, SAMPLE_RATE, subtype="FLOAT")
    meta = [asdict(sentence) for sentence in recording.sentences]
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    print(f"{args.out}: {recording.audio.size / SAMPLE_RATE:.1f} s, {len(meta)} sentences")


if __name__ == "__main__":
    main()
