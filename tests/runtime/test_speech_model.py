"""The shared speech model: the decoder states the greedy loop collects are the states of a full decoder pass
(so generate()'s second pass is not needed), and the vocoder's speech keeps every frame of real units, also of
units equal to the vocoder's pad id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from seamless_daemon.bundle import UNIT_IDS, UNIT_MASK, load_bundle
from seamless_daemon.runtime.model import SpeechModel
from seamless_daemon.runtime.sessions import RuntimeOptions

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RATE = 16000
HIDDEN_TOLERANCE = 1e-5
WAVE_TOLERANCE = 1e-4
SPEAKER = 1


@pytest.fixture(scope="module")
def model(tiny_bundle: Path) -> SpeechModel:
    return SpeechModel.open(load_bundle(tiny_bundle), RuntimeOptions(intra_op_threads=1))


def _tones(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    carrier = np.sin(2 * np.pi * (180 + 70 * seed) * t) * np.sin(2 * np.pi * (2 + seed % 3) * t)
    return (0.3 * carrier + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize(("seconds", "seed", "limit"), [(1.0, 0, 20), (3.0, 1, 20), (5.0, 16, 6)])
def test_greedy_loop_states_are_the_full_pass_states(model: SpeechModel, seconds: float, seed: int,
                                                      limit: int) -> None:
    manifest = model.bundle.manifest
    encoder = model.encode(model.features(_tones(seconds, seed)))
    prompt = [manifest.special_ids.decoder_start, manifest.languages.text["fra"]]
    decoded = model.decode(prompt, encoder, limit)
    full = model.hidden_states(decoded.sequence[:-1], encoder)
    assert decoded.hidden_states.shape == full.shape == (1, len(decoded.sequence) - 1, manifest.decoder.hidden_size)
    assert np.abs(decoded.hidden_states - full).max() <= HIDDEN_TOLERANCE


def test_vocoder_keeps_units_equal_to_the_pad_id(model: SpeechModel, tiny_checkpoint: Path) -> None:
    """t2u unit 5 is vocoder id 1, the pad id: transformers' waveform_lengths counts it as padding and cuts real
    frames; the runtime returns every frame, as generate()'s whole batch-1 waveform has them."""
    special = model.bundle.manifest.special_ids
    pad_valued = special.t2u_pad + special.vocoder_offset
    t2u_units = np.asarray([[10, pad_valued, 12, 20, 7, pad_valued]], dtype=np.int64)
    units = {UNIT_IDS: t2u_units, UNIT_MASK: np.ones_like(t2u_units)}
    ours = model.vocode(units, "fra", SPEAKER)

    reference = transformers.SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(str(tiny_checkpoint)).eval()
    vocoder_ids = torch.from_numpy(t2u_units - special.vocoder_offset)
    lang = model.bundle.manifest.languages.vocoder["fra"]
    with torch.inference_mode():
        waveform, lengths = reference.vocoder(input_ids=vocoder_ids, speaker_id=torch.tensor([[SPEAKER]]),
                                              lang_id=torch.tensor([[lang]]))
    whole = waveform[0].numpy()
    assert ours.shape == whole.shape
    assert np.abs(ours - whole).max() <= WAVE_TOLERANCE
    assert int(lengths.reshape(-1)[0]) < ours.size, "transformers' count no longer cuts pad-valued units"
