"""Host-side glue around the text-to-unit model, as transformers' speech-to-speech ``generate()`` does it.

* t2u input: the decoder's hidden states over ``sequences[:-1]``. That slice assumes the sequence ends on eos;
  when decoding stopped at the length limit it drops a real token, and so does this port.
* ``t2u_input_ids = sequences[2:-1]`` with eos replaced by pad; subwords from ``id_to_text`` (an id missing from
  the table becomes the string ``"None"``, as in transformers); per-subword character counts; a 0 count for the
  language token and the final position; character ids from ``char_to_id`` (unknown characters → unk).
* Units: t2u eos and frames outside ``unit_mask`` become t2u pad; every other unit is shifted down by
  ``vocoder_offset``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seamless_daemon.bundle import SpecialIds

logger = logging.getLogger(__name__)

SPACE = "▁"
PROMPT_LENGTH = 2  # decoder_start and language token lead every sequence
MISSING_SUBWORD = str(None)  # what transformers' lookup yields for an id absent from id_to_text


@dataclass(frozen=True)
class T2UInputs:
    """Everything the t2u graph takes besides the hidden states, for one utterance."""

    decoder_input_ids: list[int]  # sequences[:-1]: the second decoder pass's input
    attention_mask: np.ndarray  # int64 (1, L-1)
    char_input_ids: np.ndarray  # int64 (1, C)
    char_count_per_id: np.ndarray  # int64 (1, L-1)


def subwords_for(ids: Sequence[int], id_to_text: Mapping[str, str]) -> list[str]:
    return [str(id_to_text.get(str(token))) for token in ids]


def _non_pad_prefix(ids: Sequence[int], subwords: Sequence[str], pad: int) -> tuple[list[int], list[str]]:
    """transformers keeps the first ``count(id != pad)`` positions (not the prefix before the first pad)."""
    length = sum(1 for token in ids if token != pad)
    return list(ids[:length]), list(subwords[:length])


def count_characters(ids: Sequence[int], subwords: Sequence[str], pad: int, unk: int,
                     space: str = SPACE) -> list[int]:
    """Characters per subword, with a space merged into the subword it starts, or into a preceding
    punctuation mark (the rules of ``_count_character_length_in_subword`` with the default
    ``merge_space_with_prev_subword=False``). Positions at and after the first pad count 0."""
    counts = [0] * len(ids)
    kept_ids, kept = _non_pad_prefix(ids, subwords, pad)
    next_starts_with_space = [
        index + 1 < len(kept) and len(kept[index + 1]) > 1 and kept[index + 1][0] == space
        for index in range(len(kept))
    ]
    is_punctuation = [
        len(piece) == 1 and not piece.isalpha() and not piece.isnumeric() and piece != space for piece in kept
    ]
    for index, (token, piece) in enumerate(zip(kept_ids, kept)):
        if token == pad:
            break
        if token == unk:
            counts[index] = 1
            continue
        count = len(piece)
        if is_punctuation[index] and next_starts_with_space[index]:
            count += 1
        elif index > 0 and is_punctuation[index - 1] and next_starts_with_space[index - 1]:
            count -= 1
        counts[index] = count
    return counts


def character_ids(ids: Sequence[int], subwords: Sequence[str], total: int, char_to_id: Mapping[str, int],
                  pad: int, unk: int) -> list[int]:
    """Character ids of the subwords, laid out from the start of a ``total``-long row of pads."""
    row = [pad] * total
    position = 0
    kept_ids, kept = _non_pad_prefix(ids, subwords, pad)
    for token, piece in zip(kept_ids, kept):
        chars = [unk] if token == unk else [char_to_id.get(char, unk) for char in piece]
        row[position : position + len(chars)] = chars
        position += len(chars)
    return row[:total]


def prepare_t2u_inputs(sequence: Sequence[int], special: SpecialIds, id_to_text: Mapping[str, str],
                       char_to_id: Mapping[str, int]) -> T2UInputs:
    """Build the t2u inputs from one generated sequence ``[decoder_start, lang, tokens..., eos]``."""
    decoder_input_ids = list(sequence[:-1])
    seq_len = sum(1 for token in decoder_input_ids if token != special.pad)
    attention_mask = (np.arange(len(decoder_input_ids)) < seq_len).astype(np.int64)[np.newaxis, :]
    t2u_ids = [special.pad if token == special.eos else token for token in sequence[PROMPT_LENGTH:-1]]
    subwords = subwords_for(t2u_ids, id_to_text)
    counts = [0, *count_characters(t2u_ids, subwords, special.pad, special.unk), 0]
    chars = character_ids(t2u_ids, subwords, sum(counts), char_to_id, special.pad, special.unk)
    return T2UInputs(
        decoder_input_ids=decoder_input_ids,
        attention_mask=attention_mask,
        char_input_ids=np.asarray([chars], dtype=np.int64),
        char_count_per_id=np.asarray([counts], dtype=np.int64),
    )


def units_for_vocoder(unit_ids: np.ndarray, unit_mask: np.ndarray, special: SpecialIds) -> np.ndarray:
    """Replace t2u eos and padded frames by t2u pad, shift every other unit down by the vocoder offset."""
    replaced = np.where((unit_ids == special.t2u_eos) | (unit_mask == 0), special.t2u_pad, unit_ids)
    shifted = np.where(replaced == special.t2u_pad, replaced, replaced - special.vocoder_offset)
    negative = shifted < 0
    if np.any(negative):
        # Control units below the offset have no vocoder embedding (transformers raises IndexError here).
        logger.warning("%d control unit(s) below the vocoder offset replaced by pad", int(negative.sum()))
        shifted = np.where(negative, special.t2u_pad, shifted)
    return shifted.astype(np.int64)
