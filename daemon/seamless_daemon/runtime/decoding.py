"""Greedy text decoding with a key/value cache, matching transformers' ``generate(num_beams=1, do_sample=False)``.

The prompt is ``[decoder_start, lang]``. ``text_decoder_init`` runs over the prompt and returns the first logits
and every layer's self- and cross-attention cache; ``text_decoder_step`` then takes one token at a time with the
self-attention cache (the cross-attention cache never changes). Each step appends the argmax of the last logits.
Decoding stops after ``eos`` or once the new-token limit is reached, so the sequence is
``[decoder_start, lang, tokens..., eos]`` or, at the limit, ends on a real token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from seamless_daemon.runtime.sessions import GraphSession

logger = logging.getLogger(__name__)

PROMPT_LENGTH = 2  # decoder_start, language token
# transformers' GenerationConfig default, used by generate() when neither limit is configured.
DEFAULT_MAX_LENGTH = 20
MIN_NEW_TOKENS = 1  # generate() always produces at least one token, even when max_length <= the prompt
CACHE_PARTS = ("key", "value")


@dataclass(frozen=True)
class EncoderOutput:
    hidden_states: np.ndarray  # float32 (1, S, H)
    attention_mask: np.ndarray  # int64 (1, S)


@dataclass(frozen=True)
class DecodeResult:
    sequence: list[int]  # generate()'s `sequences` row
    ended_on_eos: bool
    steps: int  # decoder runs, init included


def new_token_limit(max_new_tokens: int | None, max_length: int | None) -> int:
    """How many tokens generate() may add: ``max_new_tokens`` wins, else ``max_length`` minus the prompt."""
    if max_new_tokens is not None:
        if max_new_tokens < MIN_NEW_TOKENS:
            raise ValueError(f"max_new_tokens must be >= {MIN_NEW_TOKENS}, got {max_new_tokens}")
        return max_new_tokens
    total = max_length if max_length is not None else DEFAULT_MAX_LENGTH
    return max(MIN_NEW_TOKENS, total - PROMPT_LENGTH)


def _cache_names(prefix: str, layer: int, kind: str) -> list[str]:
    return [f"{prefix}.{layer}.{kind}.{part}" for part in CACHE_PARTS]


class GreedyDecoder:
    """Runs the two decoder graphs; holds no per-utterance state."""

    def __init__(self, init: GraphSession, step: GraphSession, num_layers: int, eos: int) -> None:
        self._init = init
        self._step = step
        self._num_layers = num_layers
        self._eos = eos

    def full_pass(self, input_ids: list[int], encoder: EncoderOutput) -> dict[str, np.ndarray]:
        """``text_decoder_init`` over ``input_ids``: logits, last hidden state and the cache."""
        return self._init.run({
            "input_ids": np.asarray([input_ids], dtype=np.int64),
            "encoder_hidden_states": encoder.hidden_states,
            "encoder_attention_mask": encoder.attention_mask,
        })

    def _cache_from_init(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        past: dict[str, np.ndarray] = {}
        for layer in range(self._num_layers):
            for kind in ("self", "cross"):
                for present, name in zip(_cache_names("present", layer, kind), _cache_names("past", layer, kind)):
                    past[name] = outputs[present]
        return past

    def _update_self_cache(self, past: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
        for layer in range(self._num_layers):
            for present, name in zip(_cache_names("present", layer, "self"), _cache_names("past", layer, "self")):
                past[name] = outputs[present]

    def decode(self, prompt: list[int], encoder: EncoderOutput, max_new_tokens: int) -> DecodeResult:
        """Greedy decoding from ``prompt`` for at most ``max_new_tokens`` tokens."""
        if max_new_tokens < MIN_NEW_TOKENS:
            raise ValueError(f"max_new_tokens must be >= {MIN_NEW_TOKENS}, got {max_new_tokens}")
        sequence = list(prompt)
        outputs = self.full_pass(sequence, encoder)
        past = self._cache_from_init(outputs)
        steps = 1
        while True:
            token = int(np.argmax(outputs["logits"][0, -1]))
            sequence.append(token)
            if token == self._eos:
                return DecodeResult(sequence=sequence, ended_on_eos=True, steps=steps)
            if len(sequence) - len(prompt) >= max_new_tokens:
                return DecodeResult(sequence=sequence, ended_on_eos=False, steps=steps)
            outputs = self._step.run({
                "input_ids": np.asarray([[token]], dtype=np.int64),
                "encoder_attention_mask": encoder.attention_mask,
                **past,
            })
            self._update_self_cache(past, outputs)
            steps += 1
