"""Random checkpoints: hub folder format, both model classes, and generations that walk the real paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from seamless_export.checkpoint import EOS_ID, SPM_FILE, write_random_checkpoint
from seamless_export.presets import PRESETS, TINY
from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2ForSpeechToSpeech, SeamlessM4Tv2Model

SAMPLE_RATE = 16000
MIN_SPEECH_LANGUAGES = 4
MIN_SPEAKERS = 4
TINY_PARAMETER_LIMIT = 1_000_000
INPUT_SECONDS = (0.5, 1.0, 1.7, 2.4, 3.0, 0.8, 1.3, 2.0)


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
    assert {"tiny", "small"} <= set(PRESETS)
