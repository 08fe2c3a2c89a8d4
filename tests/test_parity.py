"""End-to-end parity: ``seamless-daemon translate --json`` (ONNX Runtime, no torch) against transformers'
``SeamlessM4Tv2ForSpeechToSpeech.generate(num_beams=1, do_sample=False, return_intermediate_token_ids=True)``.

Both sides read the same float32 16 kHz WAV file. Text ids and unit ids must be identical, the waveform must have
the same length as generate()'s whole batch-1 waveform and differ by at most 1e-4. Each bundle gets at least 12
inputs from 0.3 s to 10 s, three or more target languages, several speakers, and runs that end on eos as well as
on the token limit.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RATE = 16000
HOP = 160  # one fbank hop: adding it to a whole number of 10 ms flips the frame count between even and odd
WAVE_TOLERANCE = 1e-4
MIN_CASES = 12
CLI_TIMEOUT_S = 120
ESPEAK = shutil.which("espeak-ng")
SILENCE_LEVEL = 0.01


@dataclass(frozen=True)
class Case:
    name: str
    samples: np.ndarray
    tgt_lang: str
    speaker: int
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class Reference:
    sequence: list[int]
    units: list[int]
    waveform: np.ndarray


def _tones(seconds: float, seed: int, extra_samples: int = 0) -> np.ndarray:
    """Amplitude-modulated tones with noise: the random tiny model answers these with varied lengths."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE) + extra_samples) / RATE
    carrier = np.sin(2 * np.pi * (180 + 70 * seed) * t) * np.sin(2 * np.pi * (2 + seed % 3) * t)
    return (0.3 * carrier + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _speech(text: str, speed: int, voice: str, trim: bool = False) -> np.ndarray:
    """English speech from espeak-ng, at 16 kHz."""
    out = subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True,
                         check=True).stdout
    data, rate = sf.read(io.BytesIO(out), dtype="float32")
    samples = soxr.resample(data, rate, RATE).astype(np.float32)
    if trim:
        loud = np.nonzero(np.abs(samples) > SILENCE_LEVEL)[0]
        samples = samples[loud[0] : loud[-1] + 1]
    return samples


def tiny_cases() -> list[Case]:
    # (seconds, language, speaker, max_new_tokens, seed); every second input is one hop longer, so its fbank
    # frame count is odd and the encoder sees a padded, masked last frame. Seeds picked so that no run is empty
    # (generate() itself fails on an empty text) and both endings occur; the 1.5 s case emits eos as its last
    # allowed token.
    plan = [(0.3, "fra", 0, None, 16), (0.5, "spa", 1, None, 3), (0.8, "eng", 2, None, 1),
            (1.0, "spa", 3, None, 0), (1.5, "deu", 0, 4, 0), (2.0, "fra", 1, None, 1), (3.0, "eng", 2, 7, 0),
            (4.0, "fra", 1, 3, 0), (5.0, "spa", 0, None, 16), (6.0, "spa", 3, None, 0),
            (8.0, "deu", 2, None, 22), (10.0, "eng", 1, None, 0)]
    cases = []
    for index, (seconds, lang, speaker, limit, seed) in enumerate(plan):
        extra = HOP if index % 2 else 0
        name = f"tiny-{seconds}s{'-odd' if extra else ''}-{lang}-seed{seed}"
        cases.append(Case(name, _tones(seconds, seed, extra), lang, speaker, limit))
    return cases


def toy_cases() -> list[Case]:
    long_text = ("blue house green tree. white dog black cat. I want one apple. "
                 "see the yellow bird and the pink book. one two three four five")
    plan = [
        ("six", 220, "en-us", True, "fra", 0, None),
        ("one", 190, "en-us", False, "spa", 1, None),
        ("red", 190, "en-gb", False, "eng", 2, None),
        ("two cats", 180, "en-us", False, "fra", 3, None),
        ("three red cars", 160, "en-gb", False, "spa", 0, None),
        ("green apple", 170, "en-gb-scotland", False, "eng", 1, None),
        ("one two three four five six seven", 150, "en-us", False, "fra", 2, None),
        ("one two three four five six seven", 150, "en-us", False, "spa", 3, 3),
        ("twenty nineteen eighteen seventeen sixteen fifteen", 150, "en-us", False, "eng", 0, None),
        ("the black dog and the white cat want the red book", 140, "en-gb", False, "fra", 1, 5),
        (long_text, 150, "en-gb", False, "spa", 2, 24),
        (long_text, 110, "en-us", False, "eng", 3, 16),
    ]
    return [Case(f"toy-{text[:12].replace(' ', '_')}-{lang}", _speech(text, speed, voice, trim), lang, speaker, limit)
            for text, speed, voice, trim, lang, speaker, limit in plan]


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _load_reference(checkpoint: Path):
    transformers.logging.set_verbosity_error()
    model = transformers.SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(str(checkpoint)).eval()
    extractor = transformers.SeamlessM4TFeatureExtractor.from_pretrained(str(checkpoint))
    return model, extractor


def reference_generate(model, extractor, wav: Path, case: Case, **limits: int) -> Reference:
    samples, rate = sf.read(str(wav), dtype="float32")
    features = extractor(samples, sampling_rate=rate, return_tensors="pt")
    if case.max_new_tokens is not None:
        limits["max_new_tokens"] = case.max_new_tokens
    with torch.inference_mode():
        output = model.generate(
            input_features=features["input_features"], attention_mask=features["attention_mask"],
            tgt_lang=case.tgt_lang, speaker_id=case.speaker, num_beams=1, do_sample=False,
            return_intermediate_token_ids=True, **limits,
        )
    # At batch 1 the whole waveform is the speech of every unit: generate()'s waveform_lengths undercounts when
    # a genuine unit equals the vocoder's pad id (see test_vocoder_keeps_units_equal_to_the_pad_id).
    return Reference(output.sequences[0].tolist(), output.unit_sequences[0].tolist(), output.waveform[0].numpy())


def run_cli(bundle: Path, wav: Path, out: Path, case: Case) -> dict:
    command = [sys.executable, "-m", "seamless_daemon.translate_cli", str(wav), "-o", str(out),
               "--bundle", str(bundle), "--tgt-lang", case.tgt_lang, "--speaker", str(case.speaker),
               "--threads", "1", "--output-format", "FLOAT", "--json"]
    if case.max_new_tokens is not None:
        command += ["--max-new-tokens", str(case.max_new_tokens)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, f"{case.name}: {done.stderr.strip()}"
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"{case.name}: expected one JSON line, got {done.stdout!r}"
    return json.loads(lines[0])


def check_case(bundle: Path, model, extractor, case: Case, tmp_path: Path, eos: int, **limits: int) -> bool:
    """Compare one input; returns whether generate() ended on eos."""
    wav = tmp_path / f"{case.name}.wav"
    out = tmp_path / f"{case.name}-out.wav"
    sf.write(str(wav), case.samples, RATE, subtype="FLOAT")
    ours = run_cli(bundle, wav, out, case)
    expected = reference_generate(model, extractor, wav, case, **limits)
    assert ours["text_ids"] == expected.sequence, case.name
    assert ours["unit_ids"] == expected.units, case.name
    waveform, rate = sf.read(str(out), dtype="float32")
    assert rate == ours["sample_rate"] == RATE
    assert waveform.shape == expected.waveform.shape, case.name
    assert np.abs(waveform - expected.waveform).max() <= WAVE_TOLERANCE, case.name
    assert ours["ended_on_eos"] == (expected.sequence[-1] == eos)
    return expected.sequence[-1] == eos


def check_bundle(bundle: Path, checkpoint: Path, cases: list[Case], tmp_path: Path) -> None:
    model, extractor = _load_reference(checkpoint)
    eos = model.generation_config.eos_token_id
    endings = [check_case(bundle, model, extractor, case, tmp_path, eos) for case in cases]
    assert len(cases) >= MIN_CASES
    assert len({case.tgt_lang for case in cases}) >= 3 and len({case.speaker for case in cases}) >= 3
    assert any(endings), "no input ended on eos"
    assert not all(endings), "no input ended on the token limit"


def test_tiny_bundle_matches_generate(tiny_bundle: Path, tiny_checkpoint: Path, tmp_path: Path,
                                      one_torch_thread: None) -> None:
    check_bundle(tiny_bundle, tiny_checkpoint, tiny_cases(), tmp_path)


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is needed to speak the toy model's vocabulary")
def test_toy_bundle_matches_generate(toy_bundle: Path, toy_checkpoint: Path, tmp_path: Path,
                                     one_torch_thread: None) -> None:
    check_bundle(toy_bundle, toy_checkpoint, toy_cases(), tmp_path)


@pytest.mark.parametrize("max_length", [4, 9])
def test_max_length_alone_limits_like_generate(tiny_bundle: Path, tiny_checkpoint: Path, tmp_path: Path,
                                               one_torch_thread: None, max_length: int) -> None:
    """A bundle whose checkpoint sets only max_length: the total length, prompt included, is capped."""
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["max_new_tokens"], manifest["max_length"] = None, max_length
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    model, extractor = _load_reference(tiny_checkpoint)
    model.generation_config.max_new_tokens = None
    case = Case(f"max-length-{max_length}", _tones(10.0, seed=11), "eng", 1)
    ended_on_eos = check_case(copy, model, extractor, case, tmp_path, model.generation_config.eos_token_id,
                              max_length=max_length)
    assert not ended_on_eos
