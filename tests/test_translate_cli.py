"""``seamless-daemon translate`` as users run it: a subprocess on real WAV files and a real bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RATE = 16000
CLI_TIMEOUT_S = 120
EXIT_LEAKED = 99
# Runs the CLI with torch, transformers and seamless_export made unimportable, then checks none got loaded.
GUARDED_CLI = f"""
import importlib.abc, sys
BLOCKED = ("torch", "transformers", "seamless_export")
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("import of " + name + " is not allowed in the daemon")
        return None
sys.meta_path.insert(0, Blocker())
from seamless_daemon.translate_cli import main
status = main(sys.argv[1:])
leaked = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
if leaked:
    print("leaked imports: " + ", ".join(leaked), file=sys.stderr)
    sys.exit({EXIT_LEAKED})
sys.exit(status)
"""


def _speechlike(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    mono = 0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.standard_normal(t.size)
    if channels == 1:
        return mono.astype(np.float32)
    return np.stack([mono, 0.5 * mono], axis=1).astype(np.float32)


def translate(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", GUARDED_CLI, *args], check=False, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)


@pytest.fixture()
def speech_wav(tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    sf.write(str(path), _speechlike(1.2, RATE), RATE, subtype="PCM_16")
    return path


def _base(wav: Path, out: Path, bundle: Path, lang: str = "fra") -> list[str]:
    return [str(wav), "-o", str(out), "--bundle", str(bundle), "--tgt-lang", lang]


def test_translates_without_torch_and_prints_one_json_object(tiny_bundle: Path, speech_wav: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    done = translate([*_base(speech_wav, out, tiny_bundle), "--speaker", "1", "--json"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) >= {"text", "text_ids", "unit_ids", "sample_rate", "duration_s", "timings_ms"}
    assert result["text_ids"][:2] == [3, 121]  # decoder_start, __fra__ of the tiny bundle
    assert set(result["timings_ms"]) >= {"features", "encoder", "decoder", "t2u", "vocoder", "total"}
    waveform, rate = sf.read(str(out), dtype="float32")
    assert rate == result["sample_rate"] == RATE
    assert waveform.ndim == 1 and waveform.size > 0
    assert result["duration_s"] == pytest.approx(waveform.size / rate, abs=1e-3)


def test_stereo_44k_24bit_input_gives_16k_mono_output(tiny_bundle: Path, tmp_path: Path) -> None:
    stereo_rate = 44100
    wav = tmp_path / "stereo.wav"
    sf.write(str(wav), _speechlike(1.5, stereo_rate, channels=2), stereo_rate, subtype="PCM_24")
    assert sf.info(str(wav)).channels == 2
    out = tmp_path / "out.wav"
    done = translate([*_base(wav, out, tiny_bundle, "spa"), "--json"])
    assert done.returncode == 0, done.stderr
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (RATE, 1)
    assert json.loads(done.stdout)["sample_rate"] == RATE


def _assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode not in (0, EXIT_LEAKED), done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_language_lists_the_bundle_languages(tiny_bundle: Path, speech_wav: Path, tmp_path: Path) -> None:
    done = translate(_base(speech_wav, tmp_path / "out.wav", tiny_bundle, "xyz"))
    _assert_one_line_error(done, "xyz", "deu, eng, fra, spa")


def test_speaker_out_of_range_names_the_valid_range(tiny_bundle: Path, speech_wav: Path, tmp_path: Path) -> None:
    done = translate([*_base(speech_wav, tmp_path / "out.wav", tiny_bundle), "--speaker", "4"])
    _assert_one_line_error(done, "speaker 4", "0..3")


def test_unreadable_wav_is_named(tiny_bundle: Path, tmp_path: Path) -> None:
    wav = tmp_path / "notes.wav"
    wav.write_text("these are not samples\n", encoding="utf-8")
    done = translate(_base(wav, tmp_path / "out.wav", tiny_bundle))
    _assert_one_line_error(done, str(wav), "not a readable WAV")


def test_missing_wav_is_named(tiny_bundle: Path, tmp_path: Path) -> None:
    wav = tmp_path / "absent.wav"
    done = translate(_base(wav, tmp_path / "out.wav", tiny_bundle))
    _assert_one_line_error(done, str(wav), "no such file")


def test_empty_wav_is_named(tiny_bundle: Path, tmp_path: Path) -> None:
    wav = tmp_path / "empty.wav"
    sf.write(str(wav), np.zeros(0, dtype=np.float32), RATE)
    done = translate(_base(wav, tmp_path / "out.wav", tiny_bundle))
    _assert_one_line_error(done, str(wav), "no audio")


def test_too_short_audio_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    wav = tmp_path / "click.wav"
    sf.write(str(wav), _speechlike(0.01, RATE), RATE)
    done = translate(_base(wav, tmp_path / "out.wav", tiny_bundle))
    _assert_one_line_error(done, "too short")


def test_missing_bundle_is_named(speech_wav: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "no-bundle"
    done = translate(_base(speech_wav, tmp_path / "out.wav", bundle))
    _assert_one_line_error(done, str(bundle))


def test_bad_option_is_one_line(speech_wav: Path, tmp_path: Path) -> None:
    done = translate([*_base(speech_wav, tmp_path / "out.wav", tmp_path), "--max-new-tokens", "0"])
    _assert_one_line_error(done, "--max-new-tokens")
