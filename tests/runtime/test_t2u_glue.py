"""Character counts, character ids and unit glue against transformers' own speech-to-speech helpers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from seamless_daemon.bundle import SpecialIds
from seamless_daemon.runtime.t2u_glue import count_characters, prepare_t2u_inputs, units_for_vocoder

torch = pytest.importorskip("torch")
modeling = pytest.importorskip("transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2")
Reference = modeling.SeamlessM4Tv2PreTrainedModel

TOY_GENERATION_CONFIG = Path(__file__).parents[1] / "data" / "toy-s2tt" / "generation_config.json"
SPECIAL = SpecialIds(pad=0, unk=1, bos=2, eos=3, decoder_start=3, t2u_pad=1, t2u_eos=2, vocoder_offset=4)
# A vocabulary with every case the rules treat differently: word starts, continuations, a lone space,
# punctuation before and after word starts, digits, non-Latin letters, characters missing from char_to_id.
EDGE_PIECES = ["<pad>", "<unk>", "<s>", "</s>", "▁the", "▁a", "re", "s", "▁", ",", ".", "!", "?", "-", "'",
               "▁1", "2", "3", "▁é", "ça", "▁日本", "語", "▁,", "▁.", "x", "▁€", "%", "▁q", "__fra__"]
NUM_SEQUENCES = 400
MAX_TOKENS = 14
SEED = 1234


def _reference_self(id_to_text: dict[str, str], char_to_id: dict[str, int]) -> SimpleNamespace:
    """The attributes transformers' helper methods read from the model."""
    return SimpleNamespace(generation_config=SimpleNamespace(id_to_text=id_to_text, char_to_id=char_to_id))


def _reference_glue(sequence: list[int], owner: SimpleNamespace) -> dict[str, np.ndarray]:
    """The lines of SeamlessM4Tv2ForSpeechToSpeech.generate() between the text and unit passes."""
    sequences = torch.tensor([sequence])
    pad = SPECIAL.pad
    seq_lens = (sequences[:, :-1] != pad).int().sum(1)
    mask = modeling._compute_new_attention_mask(torch.zeros(1, sequences.shape[1] - 1, 1), seq_lens)
    ids = sequences[:, 2:-1]
    ids = torch.masked_fill(ids, ids == SPECIAL.eos, pad)
    subwords = Reference._indices_to_subwords(owner, ids)
    counts = Reference._count_character_length_in_subword(owner, ids, subwords, pad_token_id=pad)
    zero = counts.new_zeros((1, 1))
    counts = torch.cat([zero, counts, zero], dim=1)
    chars = Reference._get_char_input_ids(owner, ids, subwords, counts, pad_token_id=pad)
    return {"mask": mask.long().numpy(), "counts": counts.numpy(), "chars": chars.numpy()}


def _vocabularies() -> list[tuple[str, dict[str, str], dict[str, int]]]:
    edge_text = {str(index): piece for index, piece in enumerate(EDGE_PIECES)}
    edge_chars = {char: index + 2 for index, char in enumerate(sorted(set("".join(EDGE_PIECES[4:])) - {"€"}))}
    toy = json.loads(TOY_GENERATION_CONFIG.read_text(encoding="utf-8"))
    return [("edge", edge_text, edge_chars), ("toy", toy["id_to_text"], toy["char_to_id"])]


def _random_sequences(vocab_size: int, rng: random.Random) -> list[list[int]]:
    sequences = []
    for index in range(NUM_SEQUENCES):
        body = [rng.randrange(4, vocab_size) for _ in range(rng.randrange(1, MAX_TOKENS))]
        if index % 5 == 1:
            body[rng.randrange(len(body))] = SPECIAL.unk
        if index % 7 == 2:
            body[rng.randrange(len(body))] = SPECIAL.pad  # a pad generated mid-sentence
        if index % 11 == 3:
            body.append(vocab_size + 5)  # an id missing from id_to_text
        ending = [SPECIAL.eos] if index % 3 else []  # some end on eos, others at the length limit
        sequences.append([SPECIAL.decoder_start, 4, *body, *ending])
    return sequences


@pytest.mark.parametrize(("name", "id_to_text", "char_to_id"), _vocabularies(), ids=["edge", "toy"])
def test_character_glue_matches_transformers(name: str, id_to_text: dict[str, str],
                                             char_to_id: dict[str, int]) -> None:
    owner = _reference_self(id_to_text, char_to_id)
    rng = random.Random(SEED)
    compared = 0
    for sequence in _random_sequences(len(id_to_text), rng):
        try:
            expected = _reference_glue(sequence, owner)
        except RuntimeError:
            continue  # transformers itself fails on this sequence (char row overflow after a mid-sentence pad)
        ours = prepare_t2u_inputs(sequence, SPECIAL, id_to_text, char_to_id)
        np.testing.assert_array_equal(ours.char_count_per_id, expected["counts"], err_msg=str(sequence))
        np.testing.assert_array_equal(ours.char_input_ids, expected["chars"], err_msg=str(sequence))
        np.testing.assert_array_equal(ours.attention_mask, expected["mask"], err_msg=str(sequence))
        assert ours.decoder_input_ids == sequence[:-1]
        compared += 1
    assert compared >= NUM_SEQUENCES * 0.9


def test_space_moves_from_a_word_to_the_punctuation_before_it() -> None:
    pieces = ["▁hello", ",", "▁world", "."]
    assert count_characters([10, 11, 12, 13], pieces, pad=0, unk=1) == [6, 2, 5, 1]


def test_unknown_token_counts_one_character() -> None:
    assert count_characters([10, 1, 12], ["▁ab", "<unk>", "▁cd"], pad=0, unk=1) == [3, 1, 3]


def test_units_glue_matches_generate() -> None:
    unit_ids = np.array([[5, 2, 9, 4, 1, 30, 30]])
    unit_mask = np.array([[1, 1, 1, 1, 1, 1, 0]])
    expected = torch.tensor(unit_ids)
    replace = (expected == SPECIAL.t2u_eos) | (~torch.tensor(unit_mask).bool())
    expected = expected.masked_fill(replace, SPECIAL.t2u_pad)
    expected = torch.where(expected == SPECIAL.t2u_pad, expected, expected - SPECIAL.vocoder_offset)
    np.testing.assert_array_equal(units_for_vocoder(unit_ids, unit_mask, SPECIAL), expected.numpy())
