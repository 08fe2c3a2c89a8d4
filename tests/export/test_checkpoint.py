"""Random checkpoints: hub folder format, both model classes, and generations that walk the real paths.

The ``large --layers 1`` tests build a checkpoint with the released model's widths and tables (0.49B parameters,
about 2 GB on disk, 1.5 GB peak memory) through the CLI; they are marked slow.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from seamless_export.checkpoint import EOS_ID, SPM_FILE, VOCODER_OFFSET, write_random_checkpoint
from seamless_export.presets import (
    LAYER_KEYS,
    PRESETS,
    RELEASED_TEXT_LANGUAGES,
    RELEASED_VOCODER_LANGUAGES,
    TINY,
    with_layers,
)
from transformers import (
    SeamlessM4TFeatureExtractor,
    SeamlessM4Tv2Config,
    SeamlessM4Tv2ForSpeechToSpeech,
    SeamlessM4Tv2Model,
)

SAMPLE_RATE = 16000
MIN_SPEECH_LANGUAGES = 4
MIN_SPEAKERS = 4
TINY_PARAMETER_LIMIT = 1_000_000
INPUT_SECONDS = (0.5, 1.0, 1.7, 2.4, 3.0, 0.8, 1.3, 2.0)
# The released model (facebook/seamless-m4t-v2-large): its speech languages, speakers and a few language tokens
# (transformers' integration tests expect these ids), and about 10k characters in char_to_id.
RELEASED_SPEECH_LANGUAGES = 36
RELEASED_SPEAKERS = 200
RELEASED_TEXT_LANGUAGE_IDS = {"eng": 256022, "fra": 256026, "rus": 256074, "swh": 256084}
MIN_RELEASED_CHARACTERS = 10_000
CONFIG_KEYS_SET_ON_SAVE = {"architectures", "dtype", "transformers_version", "_name_or_path"}
LARGE_INPUT_SECONDS = 2.0
LARGE_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def s2st(tiny_checkpoint: Path) -> SeamlessM4Tv2ForSpeechToSpeech:
    return SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(tiny_checkpoint).eval()


@pytest.fixture(scope="module")
def generations(s2st: SeamlessM4Tv2ForSpeechToSpeech, tiny_checkpoint: Path) -> list[dict[str, object]]:
    """Greedy generate() on seeded noise of several lengths, with every speech language and speaker."""
    extractor = SeamlessM4TFeatureExtractor.from_pretrained(tiny_checkpoint)
    langs = sorted(s2st.generation_config.vocoder_lang_code_to_id)
    durations: list[float] = []
    for predictor in (s2st.t2u_model.model.decoder.duration_predictor, s2st.vocoder.dur_predictor):
        predictor.register_forward_hook(
            lambda module, args, out: durations.append(float(torch.round(torch.expm1(out)).max()))
        )
    rng = np.random.default_rng(0)
    results = []
    for index, seconds in enumerate(INPUT_SECONDS):
        wave = (rng.standard_normal(int(SAMPLE_RATE * seconds)) * 0.1).astype(np.float32)
        features = extractor(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        durations.clear()
        try:
            out = s2st.generate(
                **features,
                tgt_lang=langs[index % len(langs)],
                speaker_id=index % s2st.config.vocoder_num_spkrs,
                return_intermediate_token_ids=True,
            )
        except RuntimeError:  # generate() cannot synthesise an empty translation
            continue
        results.append({"sequence": out.sequences[0].tolist(), "max_duration": max(durations)})
    return results


def test_tiny_preset_is_small_and_has_speech_languages_and_speakers(tiny_checkpoint: Path) -> None:
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    generation = json.loads((tiny_checkpoint / "generation_config.json").read_text())
    assert generation["_from_model_config"] is False
    speech = set(generation["text_decoder_lang_to_code_id"]) & set(generation["t2u_lang_code_to_id"])
    speech &= set(generation["vocoder_lang_code_to_id"])
    assert len(speech) >= MIN_SPEECH_LANGUAGES
    assert config["vocoder_num_spkrs"] >= MIN_SPEAKERS
    assert set(generation["id_to_text"]) == {str(i) for i in range(config["vocab_size"])}
    assert (tiny_checkpoint / SPM_FILE).is_file() and (tiny_checkpoint / "preprocessor_config.json").is_file()
    model = SeamlessM4Tv2Model.from_pretrained(tiny_checkpoint)
    assert sum(p.numel() for p in model.parameters()) < TINY_PARAMETER_LIMIT
    assert model.generation_config.id_to_text == generation["id_to_text"]


def test_generations_end_on_eos_and_on_the_length_limit(
    generations: list[dict[str, object]], s2st: SeamlessM4Tv2ForSpeechToSpeech
) -> None:
    limit = s2st.generation_config.max_new_tokens
    prompt = 2  # decoder start and language token
    endings = {"eos" if g["sequence"][-1] == EOS_ID else "limit" for g in generations}
    assert endings == {"eos", "limit"}
    for g in generations:
        if g["sequence"][-1] != EOS_ID:
            assert len(g["sequence"]) == prompt + limit


def test_durations_exceed_one(generations: list[dict[str, object]]) -> None:
    assert max(g["max_duration"] for g in generations) > 1


def test_same_seed_same_checkpoint_other_seed_differs(tmp_path: Path, tiny_checkpoint: Path) -> None:
    again = write_random_checkpoint(tmp_path / "again", TINY, seed=0).path
    other = write_random_checkpoint(tmp_path / "other", TINY, seed=1).path
    reference = (tiny_checkpoint / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == reference
    assert (again / SPM_FILE).read_bytes() == (tiny_checkpoint / SPM_FILE).read_bytes()
    assert (other / "model.safetensors").read_bytes() != reference


def test_unknown_preset_is_refused() -> None:
    from seamless_export.presets import get_preset

    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_preset("huge")
    assert {"tiny", "small", "large"} <= set(PRESETS)


def test_layers_set_every_stack_and_keep_widths(tmp_path: Path) -> None:
    three = write_random_checkpoint(tmp_path / "three", TINY, seed=0, layers=3)
    config = json.loads((three.path / "config.json").read_text())
    assert three.layers == 3 and all(config[key] == 3 for key in LAYER_KEYS)
    assert config["hidden_size"] == TINY.config["hidden_size"]
    with pytest.raises(ValueError, match="positive integer"):
        with_layers(TINY, 0)
    refused = _cli("random-checkpoint", str(tmp_path / "zero"), "--layers", "0")
    assert refused.returncode != 0 and "--layers" in refused.stderr


def test_streamed_weights_are_seeded_per_tensor_and_load(tmp_path: Path) -> None:
    streamed = dataclasses.replace(TINY, streamed=True)
    one = write_random_checkpoint(tmp_path / "one", streamed, seed=5, layers=1).path
    again = write_random_checkpoint(tmp_path / "again", streamed, seed=5, layers=1).path
    two = write_random_checkpoint(tmp_path / "two", streamed, seed=5, layers=2).path
    assert (one / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    first_layer = "text_decoder.layers.0.ffn.fc1.weight"
    with safe_open(one / "model.safetensors", "pt") as small, safe_open(two / "model.safetensors", "pt") as deep:
        assert torch.equal(small.get_tensor(first_layer), deep.get_tensor(first_layer))
    _, loading = SeamlessM4Tv2Model.from_pretrained(two, output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "seamless_export.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def large_layer_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``--preset large --layers 1`` through the CLI; removed afterwards (about 2 GB)."""
    target = tmp_path_factory.mktemp("large") / "large-l1"
    result = _cli("random-checkpoint", str(target), "--preset", "large", "--layers", "1")
    assert result.returncode == 0, result.stderr
    assert "large checkpoint, 1 layers per stack" in result.stdout
    yield target
    shutil.rmtree(target, ignore_errors=True)


@pytest.mark.slow
def test_large_layers_checkpoint_has_the_released_widths_and_tables(large_layer_checkpoint: Path) -> None:
    config = SeamlessM4Tv2Config.from_pretrained(large_layer_checkpoint).to_dict()
    generation = json.loads((large_layer_checkpoint / "generation_config.json").read_text())
    released = SeamlessM4Tv2Config().to_dict()
    differing = {key for key in released.keys() | config.keys() if config.get(key) != released.get(key)}
    differing -= CONFIG_KEYS_SET_ON_SAVE
    assert differing == set(LAYER_KEYS) and all(config[key] == 1 for key in LAYER_KEYS)
    assert generation["_from_model_config"] is False
    assert set(generation["id_to_text"]) == {str(i) for i in range(released["vocab_size"])}
    text, units, vocoder = (generation[key] for key in ("text_decoder_lang_to_code_id", "t2u_lang_code_to_id",
                                                       "vocoder_lang_code_to_id"))
    assert list(text) == list(RELEASED_TEXT_LANGUAGES)
    assert {lang: text[lang] for lang in RELEASED_TEXT_LANGUAGE_IDS} == RELEASED_TEXT_LANGUAGE_IDS
    assert all(generation["id_to_text"][str(token)] == f"__{lang}__" for lang, token in text.items())
    speech = [lang for lang in vocoder if lang in text and lang in units]
    assert speech == list(RELEASED_VOCODER_LANGUAGES) and len(speech) == RELEASED_SPEECH_LANGUAGES
    assert sorted(vocoder.values()) == list(range(config["vocoder_num_langs"]))
    assert max(units.values()) < config["t2u_vocab_size"]
    assert config["vocoder_num_spkrs"] == RELEASED_SPEAKERS
    chars = generation["char_to_id"]
    assert MIN_RELEASED_CHARACTERS <= len(chars) and max(chars.values()) < config["char_vocab_size"]
    assert (large_layer_checkpoint / SPM_FILE).is_file()


@pytest.mark.slow
def test_large_layers_checkpoint_loads_and_speaks(large_layer_checkpoint: Path) -> None:
    model, loading = SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(large_layer_checkpoint, output_loading_info=True)
    assert not loading["missing_keys"]
    assert all(key.startswith("text_encoder.") for key in loading["unexpected_keys"])  # the hub's full layout
    model.eval()
    extractor = SeamlessM4TFeatureExtractor.from_pretrained(large_layer_checkpoint)
    wave = (np.random.default_rng(0).standard_normal(int(SAMPLE_RATE * LARGE_INPUT_SECONDS)) * 0.1).astype(np.float32)
    features = extractor(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    tgt_lang, speaker = "fra", model.config.vocoder_num_spkrs - 1
    with torch.no_grad():
        out = model.generate(**features, tgt_lang=tgt_lang, speaker_id=speaker, max_new_tokens=LARGE_NEW_TOKENS,
                             return_intermediate_token_ids=True)
    sequence = out.sequences[0].tolist()
    assert sequence[:2] == [EOS_ID, model.generation_config.text_decoder_lang_to_code_id[tgt_lang]]
    assert len(sequence) > 2 and max(sequence) < model.config.vocab_size
    units = out.unit_sequences[0]
    voiced = units[units >= VOCODER_OFFSET]
    assert voiced.numel() > 0 and int(voiced.max()) < VOCODER_OFFSET + model.config.unit_hifi_gan_vocab_size
    assert out.waveform.numel() > 0 and bool(torch.isfinite(out.waveform).all())
