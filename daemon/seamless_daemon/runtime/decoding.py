"""Greedy text decoding with a key/value cache, matching transformers' ``generate(num_beams=1, do_sample=False)``.

Two graphs hold the decoder (docs/bundle-format.md). ``text_decoder_cross`` turns the encoder output into every
layer's cross-attention keys and values, once per utterance (:meth:`GreedyDecoder.attend`). ``text_decoder``
runs ``L`` new tokens after ``P`` cached ones: the first step is the prompt ``[decoder_start, lang]`` with an empty
self-attention past, every later step one token with the past so far. Each step appends the argmax of the last
logits; decoding stops after ``eos`` or once the new-token limit is reached, so the sequence is
``[decoder_start, lang, tokens..., eos]`` or, at the limit, ends on a real token.

Every run also returns the hidden states of its new positions. Together they are the hidden states of
``sequence[:-1]`` (the last token is never fed back), which is exactly the input generate() computes for the
text-to-unit model with a second full decoder pass; :class:`DecodeResult` carries them so that pass is not needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from seamless_daemon.bundle import (
    ENCODER_ATTENTION_MASK,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LAST_HIDDEN_STATE,
    LOGITS,
    DecoderSpec,
    cross_cache_names,
    self_cache_names,
)
from seamless_daemon.runtime.sessions import GraphSession

logger = logging.getLogger(__name__)

PROMPT_LENGTH = 2  # decoder_start, language token
# transformers' GenerationConfig default, used by generate() when neither limit is configured.
DEFAULT_MAX_LENGTH = 20
MIN_NEW_TOKENS = 1  # generate() always produces at least one token, even when max_length <= the prompt
SEQUENCE_AXIS = 1


@dataclass(frozen=True)
class EncoderOutput:
    """What the decoder needs of one utterance's encoder output: its mask and every layer's cross-attention
    keys/values (the hidden states themselves are not kept once those are computed)."""

    attention_mask: np.ndarray  # int64 (1, S)
    cross: dict[str, np.ndarray]  # cross.{i}.key / .value, float32 (1, heads, S, head_dim)


@dataclass(frozen=True)
class DecodeResult:
    sequence: list[int]  # generate()'s `sequences` row
    ended_on_eos: bool
    steps: int  # decoder runs
    hidden_states: np.ndarray  # float32 (1, len(sequence) - 1, H): the decoder states of sequence[:-1]


def new_token_limit(max_new_tokens: int | None, max_length: int | None) -> int:
    """How many tokens generate() may add: ``max_new_tokens`` wins, else ``max_length`` minus the prompt."""
    if max_new_tokens is not None:
        if max_new_tokens < MIN_NEW_TOKENS:
            raise ValueError(f"max_new_tokens must be >= {MIN_NEW_TOKENS}, got {max_new_tokens}")
        return max_new_tokens
    total = max_length if max_length is not None else DEFAULT_MAX_LENGTH
    return max(MIN_NEW_TOKENS, total - PROMPT_LENGTH)


class GreedyDecoder:
    """Runs the two decoder graphs; holds no per-utterance state."""

    def __init__(self, cross: GraphSession, decoder: GraphSession, spec: DecoderSpec, eos: int) -> None:
        self._cross = cross
        self._decoder = decoder
        self._eos = eos
        self._past_names = self_cache_names("past", spec.num_layers)
        self._present_names = self_cache_names("present", spec.num_layers)
        self._cross_names = cross_cache_names(spec.num_layers)
        self._empty_past = np.zeros((1, spec.num_heads, 0, spec.head_dim), dtype=np.float32)

    def attend(self, hidden_states: np.ndarray, attention_mask: np.ndarray) -> EncoderOutput:
        """The cross-attention keys/values of every layer for one utterance's encoder output."""
        cross = self._cross.run({ENCODER_HIDDEN_STATES: hidden_states})
        return EncoderOutput(attention_mask, {name: cross[name] for name in self._cross_names})

    def _run(self, input_ids: list[int], encoder: EncoderOutput,
             past: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        feeds = {INPUT_IDS: np.asarray([input_ids], dtype=np.int64), ENCODER_ATTENTION_MASK: encoder.attention_mask}
        if past is None:
            feeds.update({name: self._empty_past for name in self._past_names})
        else:
            feeds.update(past)
        feeds.update(encoder.cross)
        return self._decoder.run(feeds)

    def full_pass(self, input_ids: list[int], encoder: EncoderOutput) -> np.ndarray:
        """Hidden states of every position of ``input_ids`` (one run, no past)."""
        return self._run(input_ids, encoder, None)[LAST_HIDDEN_STATE]

    def _next_past(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {past: outputs[present] for past, present in zip(self._past_names, self._present_names)}

    def decode(self, prompt: list[int], encoder: EncoderOutput, max_new_tokens: int) -> DecodeResult:
        """Greedy decoding from ``prompt`` for at most ``max_new_tokens`` tokens."""
        if max_new_tokens < MIN_NEW_TOKENS:
            raise ValueError(f"max_new_tokens must be >= {MIN_NEW_TOKENS}, got {max_new_tokens}")
        sequence = list(prompt)
        outputs = self._run(sequence, encoder, None)
        hidden = [outputs[LAST_HIDDEN_STATE]]
        steps = 1
        while True:
            token = int(np.argmax(outputs[LOGITS][0, -1]))
            sequence.append(token)
            ended_on_eos = token == self._eos
            if ended_on_eos or len(sequence) - len(prompt) >= max_new_tokens:
                return DecodeResult(sequence=sequence, ended_on_eos=ended_on_eos, steps=steps,
                                    hidden_states=np.concatenate(hidden, axis=SEQUENCE_AXIS))
            outputs = self._run([token], encoder, self._next_past(outputs))
            hidden.append(outputs[LAST_HIDDEN_STATE])
            steps += 1
