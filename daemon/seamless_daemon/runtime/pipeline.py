"""Speech-to-speech translation of one utterance through the bundle's graphs.

:class:`Translator` holds the shared sessions (no per-utterance state, safe to call from several threads) and
chains: features → speech encoder → cross-attention keys/values → greedy text decoding → t2u → unit glue → vocoder.
The result reproduces transformers' ``SeamlessM4Tv2ForSpeechToSpeech.generate(num_beams=1, do_sample=False,
return_intermediate_token_ids=True)``: ``text_ids`` is its ``sequences`` row, ``unit_ids`` its
``unit_sequences`` row, ``waveform`` its (batch 1, whole) waveform. The decoder states that feed t2u are those the
greedy loop computed (generate() recomputes them with a second full pass; the loop's are the same states).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from seamless_daemon.bundle import ROLE_SPEECH_ENCODER, Bundle, load_bundle
from seamless_daemon.runtime.decoding import PROMPT_LENGTH, DecodeResult, EncoderOutput, new_token_limit
from seamless_daemon.runtime.features import FeatureError
from seamless_daemon.runtime.model import SpeechModel, SpeechOutput
from seamless_daemon.runtime.sessions import GraphSession, RuntimeOptions
from seamless_daemon.runtime.t2u_glue import SPACE, prepare_t2u_inputs

logger = logging.getLogger(__name__)

STAGES = ("features", "encoder", "decoder", "t2u", "vocoder")
MS_PER_SECOND = 1000.0
WARMUP_SECONDS = 1.0
WARMUP_NOISE_LEVEL = 0.01
WARMUP_SEED = 0
WARMUP_MAX_NEW_TOKENS = 4

T = TypeVar("T")


class TranslationError(ValueError):
    """A request the translator cannot serve (bad language, speaker, limit or audio); one-line message."""


@dataclass(frozen=True)
class TranslationResult:
    text: str
    text_ids: list[int]  # [decoder_start, lang, tokens..., eos]
    unit_ids: list[int]  # t2u argmax units, before the vocoder glue
    waveform: np.ndarray  # float32 mono
    sample_rate: int
    ended_on_eos: bool
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, and "total"

    @property
    def duration_s(self) -> float:
        return float(self.waveform.size) / self.sample_rate


class _Timer:
    """Per-utterance stage timings."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings_ms: dict[str, float] = {}

    def measure(self, stage: str, work: Callable[[], T]) -> T:
        began = time.perf_counter()
        value = work()
        elapsed = (time.perf_counter() - began) * MS_PER_SECOND
        self.timings_ms[stage] = self.timings_ms.get(stage, 0.0) + elapsed
        return value

    def finish(self) -> dict[str, float]:
        self.timings_ms["total"] = (time.perf_counter() - self.start) * MS_PER_SECOND
        return {name: round(value, 3) for name, value in self.timings_ms.items()}


class Translator:
    """A loaded bundle ready to translate utterances."""

    def __init__(self, bundle: Bundle, options: RuntimeOptions | None = None) -> None:
        self.bundle = bundle
        self.options = options if options is not None else RuntimeOptions()
        manifest = bundle.manifest
        self.model = SpeechModel.open(bundle, self.options)
        special = manifest.special_ids
        self._hidden_ids = {special.pad, special.unk, special.bos, special.eos, special.decoder_start,
                            *manifest.languages.text.values()}
        logger.info("translator ready: %s on %s, languages %s", bundle.root, self.provider,
                    " ".join(self.languages))

    @classmethod
    def open(cls, path: str | Path, options: RuntimeOptions | None = None) -> Translator:
        return cls(load_bundle(path), options)

    @property
    def provider(self) -> str:
        """Execution provider of the speech encoder session (all sessions share one provider list)."""
        return self.model.sessions[ROLE_SPEECH_ENCODER].provider

    @property
    def sessions(self) -> Mapping[str, GraphSession]:
        """The opened graphs by role, for other runtime parts that share them (streaming's translator)."""
        return dict(self.model.sessions)

    @property
    def languages(self) -> list[str]:
        """Target languages the bundle can speak."""
        return self.bundle.manifest.languages.speech_targets

    @property
    def num_speakers(self) -> int:
        return self.bundle.manifest.num_speakers

    @property
    def input_sample_rate(self) -> int:
        return self.bundle.manifest.input_sample_rate

    @property
    def output_sample_rate(self) -> int:
        return self.bundle.manifest.output_sample_rate

    def check_request(self, tgt_lang: str, speaker: int, max_new_tokens: int | None) -> None:
        """Raise :class:`TranslationError` for a language, speaker or limit the bundle cannot serve."""
        if tgt_lang not in self.languages:
            raise TranslationError(
                f"unknown target language {tgt_lang!r}; this bundle speaks: {', '.join(self.languages)}"
            )
        if not 0 <= speaker < self.num_speakers:
            raise TranslationError(f"speaker {speaker} is out of range; valid speakers are 0..{self.num_speakers - 1}")
        if max_new_tokens is not None and max_new_tokens < 1:
            raise TranslationError(f"max_new_tokens must be >= 1, got {max_new_tokens}")

    def warmup(self) -> None:
        """Run one short utterance through every graph so the first real request is not slowed down."""
        rng = np.random.default_rng(WARMUP_SEED)
        samples = int(WARMUP_SECONDS * self.input_sample_rate)
        noise = (rng.standard_normal(samples) * WARMUP_NOISE_LEVEL).astype(np.float32)
        lang = self.languages[0]
        result = self.translate(noise, lang, 0, WARMUP_MAX_NEW_TOKENS)
        if not result.unit_ids:
            # Noise translated to nothing: run the speech graphs on a made-up sentence so they are warm too.
            timer = _Timer()
            manifest = self.bundle.manifest
            special = manifest.special_ids
            word = next(int(i) for i in manifest.id_to_text if int(i) not in self._hidden_ids)
            prompt = [special.decoder_start, manifest.languages.text[lang]]
            encoder = self._encode(timer, noise)
            decoded = self.model.decode([*prompt, word], encoder, 1)
            self._speak(timer, decoded, lang, 0)
        logger.info("warm-up done in %.0f ms", result.timings_ms["total"])

    def text_for(self, ids: list[int]) -> str:
        """Readable text: subwords of the generated tokens, specials and language tokens left out."""
        id_to_text = self.bundle.manifest.id_to_text
        pieces = [id_to_text.get(str(token), "") for token in ids[PROMPT_LENGTH:] if token not in self._hidden_ids]
        return "".join(pieces).replace(SPACE, " ").strip()

    def _encode(self, timer: _Timer, waveform: np.ndarray) -> EncoderOutput:
        try:
            features = timer.measure("features", lambda: self.model.features(waveform))
        except FeatureError as err:
            raise TranslationError(str(err)) from None
        return timer.measure("encoder", lambda: self.model.encode(features))

    def _speak(self, timer: _Timer, decoded: DecodeResult, tgt_lang: str, speaker: int) -> SpeechOutput:
        manifest = self.bundle.manifest
        sequence = decoded.sequence
        if len(sequence) <= PROMPT_LENGTH + 1:
            # Nothing between the language token and the last token: no text for t2u (generate() fails here).
            logger.info("no text tokens to speak; returning silence")
            return SpeechOutput(unit_ids=np.zeros(0, dtype=np.int64), waveform=np.zeros(0, dtype=np.float32))
        t2u_inputs = prepare_t2u_inputs(sequence, manifest.special_ids, manifest.id_to_text, manifest.char_to_id)
        units = timer.measure("t2u", lambda: self.model.units(decoded.hidden_states, t2u_inputs))
        waveform = timer.measure("vocoder", lambda: self.model.vocode(units, tgt_lang, speaker))
        return SpeechOutput(unit_ids=units["unit_ids"][0], waveform=waveform)

    def translate(self, waveform_16k: np.ndarray, tgt_lang: str, speaker: int = 0,
                  max_new_tokens: int | None = None) -> TranslationResult:
        """Translate one mono utterance sampled at the bundle's input rate into speech in ``tgt_lang``."""
        self.check_request(tgt_lang, speaker, max_new_tokens)
        manifest = self.bundle.manifest
        limit = new_token_limit(
            max_new_tokens if max_new_tokens is not None else manifest.max_new_tokens, manifest.max_length
        )
        timer = _Timer()
        encoder = self._encode(timer, np.asarray(waveform_16k, dtype=np.float32))
        prompt = [manifest.special_ids.decoder_start, manifest.languages.text[tgt_lang]]
        decoded = timer.measure("decoder", lambda: self.model.decode(prompt, encoder, limit))
        speech = self._speak(timer, decoded, tgt_lang, speaker)
        for stage in STAGES:
            timer.timings_ms.setdefault(stage, 0.0)
        return TranslationResult(
            text=self.text_for(decoded.sequence),
            text_ids=decoded.sequence,
            unit_ids=[int(unit) for unit in speech.unit_ids],
            waveform=speech.waveform,
            sample_rate=manifest.output_sample_rate,
            ended_on_eos=decoded.ended_on_eos,
            timings_ms=timer.finish(),
        )
