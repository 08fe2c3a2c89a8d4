"""Streaming-side translation: text hypotheses of a growing utterance, and speech for newly committed tokens only.

:meth:`IncrementalTranslator.hypothesize` runs features → speech encoder → greedy decoding from
``[decoder_start, lang, *prefix]`` (the committed tokens forced) and stops there: no t2u, no vocoder.

:meth:`IncrementalTranslator.speak` synthesises the tokens ``start .. end`` of a hypothesis. t2u takes the decoder
states of ``[decoder_start, lang, tokens[:end]]`` at positions ``start .. end+1`` — laid out as the complete-mode
glue lays out ``sequences[:-1]`` — with the character ids and counts of the new tokens only (0 for the first and
last position). The hypothesis' greedy loop computed those states already (a causal decoder's state at a position
depends on the tokens up to it only), except when ``end`` reaches a last token that was never fed back; then one
full decoder pass computes them. For ``start = 0`` and ``end`` = every token of a hypothesis that ended on eos,
this is exactly what :class:`~seamless_daemon.runtime.pipeline.Translator` feeds t2u.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from seamless_daemon.bundle import Bundle
from seamless_daemon.runtime.decoding import PROMPT_LENGTH, EncoderOutput, new_token_limit
from seamless_daemon.runtime.model import MODEL_ROLES, SpeechModel
from seamless_daemon.runtime.pipeline import TranslationError
from seamless_daemon.runtime.sessions import GraphSession, RuntimeOptions, open_sessions
from seamless_daemon.runtime.t2u_glue import prepare_t2u_inputs, subwords_for

logger = logging.getLogger(__name__)

MS_PER_SECOND = 1000.0


@dataclass(frozen=True)
class TextHypothesis:
    """A text-only translation of one audio stretch."""

    token_ids: tuple[int, ...]  # generated tokens (forced prefix included), prompt and eos left out
    pieces: tuple[str, ...]  # subword of each token
    ended_on_eos: bool
    tgt_lang: str
    encoder: EncoderOutput  # kept so speech for these tokens can be made without encoding again
    hidden_states: np.ndarray  # decoder states of [decoder_start, lang, *sequence[:-1]] from the greedy loop
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeechPiece:
    """Speech for tokens ``start .. end`` of a hypothesis."""

    waveform: np.ndarray  # float32 mono
    sample_rate: int
    unit_count: int
    timings_ms: dict[str, float] = field(default_factory=dict)


def _elapsed_ms(began: float) -> float:
    return round((time.perf_counter() - began) * MS_PER_SECOND, 3)


class IncrementalTranslator:
    """Shared sessions (pass the complete-mode translator's own to avoid loading the graphs twice)."""

    def __init__(self, bundle: Bundle, sessions: Mapping[str, GraphSession]) -> None:
        self.bundle = bundle
        self.model = SpeechModel(bundle, sessions)

    @classmethod
    def open(cls, bundle: Bundle, options: RuntimeOptions | None = None) -> IncrementalTranslator:
        return cls(bundle, open_sessions(bundle, MODEL_ROLES, options if options is not None else RuntimeOptions()))

    @property
    def output_sample_rate(self) -> int:
        return self.bundle.manifest.output_sample_rate

    def _check_lang(self, tgt_lang: str) -> None:
        languages = self.bundle.manifest.languages
        if tgt_lang not in languages.text or tgt_lang not in languages.vocoder:
            raise TranslationError(f"unknown target language {tgt_lang!r}; this bundle speaks: "
                                   f"{', '.join(languages.speech_targets)}")

    def encode(self, waveform: np.ndarray) -> EncoderOutput:
        return self.model.encode(self.model.features(waveform))

    def hypothesize(self, waveform: np.ndarray, tgt_lang: str, prefix_ids: Sequence[int] = (),
                    max_new_tokens: int | None = None) -> TextHypothesis:
        """Greedy text for ``waveform``, continuing the forced ``prefix_ids``."""
        self._check_lang(tgt_lang)
        manifest = self.bundle.manifest
        began = time.perf_counter()
        encoder = self.encode(waveform)
        encoded_ms = _elapsed_ms(began)
        bundle_limit = new_token_limit(manifest.max_new_tokens, manifest.max_length)
        limit = bundle_limit if max_new_tokens is None else max(1, min(max_new_tokens, bundle_limit))
        prompt = [manifest.special_ids.decoder_start, manifest.languages.text[tgt_lang], *map(int, prefix_ids)]
        decoded = self.model.decode(prompt, encoder, limit)
        tokens = decoded.sequence[PROMPT_LENGTH:]
        if decoded.ended_on_eos:
            tokens = tokens[:-1]
        return TextHypothesis(
            token_ids=tuple(tokens), pieces=tuple(subwords_for(tokens, manifest.id_to_text)),
            ended_on_eos=decoded.ended_on_eos, tgt_lang=tgt_lang, encoder=encoder,
            hidden_states=decoded.hidden_states,
            timings_ms={"encoder": encoded_ms, "decoder": round(_elapsed_ms(began) - encoded_ms, 3),
                        "total": _elapsed_ms(began)},
        )

    def speak(self, hypothesis: TextHypothesis, start: int, end: int, speaker: int = 0) -> SpeechPiece:
        """Speech for tokens ``start .. end`` of ``hypothesis`` only."""
        if not 0 <= start < end <= len(hypothesis.token_ids):
            raise ValueError(f"token range {start}..{end} is not inside 0..{len(hypothesis.token_ids)}")
        manifest = self.bundle.manifest
        if not 0 <= speaker < manifest.num_speakers:
            raise TranslationError(f"speaker {speaker} is out of range; valid speakers are "
                                   f"0..{manifest.num_speakers - 1}")
        began = time.perf_counter()
        prompt = [manifest.special_ids.decoder_start, manifest.languages.text[hypothesis.tgt_lang]]
        window_end = end + PROMPT_LENGTH
        hidden = hypothesis.hidden_states
        if hidden.shape[1] < window_end:
            hidden = self.model.hidden_states([*prompt, *hypothesis.token_ids[:end]], hypothesis.encoder)
        pretend = [*prompt, *hypothesis.token_ids[start:end], manifest.special_ids.eos]
        t2u_inputs = prepare_t2u_inputs(pretend, manifest.special_ids, manifest.id_to_text, manifest.char_to_id)
        units = self.model.units(hidden[:, start:window_end], t2u_inputs)
        waveform = self.model.vocode(units, hypothesis.tgt_lang, speaker)
        return SpeechPiece(
            waveform=waveform, sample_rate=manifest.output_sample_rate,
            unit_count=int(units["unit_ids"].shape[1]), timings_ms={"total": _elapsed_ms(began)},
        )
