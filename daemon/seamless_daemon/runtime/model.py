"""The bundle's graphs as one stateless speech-to-speech model: encode, decode greedily, speak.

:class:`SpeechModel` is shared by complete mode (:class:`~seamless_daemon.runtime.pipeline.Translator`) and
streaming (:class:`~seamless_daemon.runtime.incremental.IncrementalTranslator`); it holds the ONNX Runtime sessions
and no per-utterance state, so any number of threads and streams may use one instance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seamless_daemon.bundle import (
    ATTENTION_MASK,
    CHAR_COUNT_PER_ID,
    CHAR_INPUT_IDS,
    ENCODER_ATTENTION_MASK,
    ENCODER_HIDDEN_STATES,
    INPUT_FEATURES,
    INPUT_IDS,
    INPUTS_EMBEDS,
    LANG_ID,
    ROLE_DECODER,
    ROLE_DECODER_CROSS,
    ROLE_SPEECH_ENCODER,
    ROLE_T2U,
    ROLE_VOCODER,
    SPEAKER_ID,
    UNIT_IDS,
    UNIT_MASK,
    WAVEFORM,
    Bundle,
)
from seamless_daemon.runtime.decoding import DecodeResult, EncoderOutput, GreedyDecoder
from seamless_daemon.runtime.features import extract_features
from seamless_daemon.runtime.sessions import GraphSession, RuntimeOptions, open_sessions
from seamless_daemon.runtime.t2u_glue import T2UInputs, units_for_vocoder

logger = logging.getLogger(__name__)

MODEL_ROLES = (ROLE_SPEECH_ENCODER, ROLE_DECODER_CROSS, ROLE_DECODER, ROLE_T2U, ROLE_VOCODER)


@dataclass(frozen=True)
class SpeechOutput:
    unit_ids: np.ndarray  # t2u units, before the vocoder glue
    waveform: np.ndarray  # float32 mono at the bundle's output rate


class SpeechModel:
    """Sessions for every graph of the speech-to-speech path, opened once."""

    def __init__(self, bundle: Bundle, sessions: Mapping[str, GraphSession]) -> None:
        missing = [role for role in MODEL_ROLES if role not in sessions]
        if missing:
            raise ValueError(f"sessions missing for: {', '.join(missing)}")
        self.bundle = bundle
        self.sessions = dict(sessions)
        manifest = bundle.manifest
        self._decoder = GreedyDecoder(sessions[ROLE_DECODER_CROSS], sessions[ROLE_DECODER], manifest.decoder,
                                      manifest.special_ids.eos)

    @classmethod
    def open(cls, bundle: Bundle, options: RuntimeOptions | None = None) -> SpeechModel:
        return cls(bundle, open_sessions(bundle, MODEL_ROLES, options if options is not None else RuntimeOptions()))

    def features(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """fbank features of a mono waveform at the bundle's input rate (raises FeatureError)."""
        features = extract_features(np.asarray(waveform, dtype=np.float32), self.bundle.manifest.features)
        return {INPUT_FEATURES: features.input_features, ATTENTION_MASK: features.attention_mask}

    def encode(self, features: dict[str, np.ndarray]) -> EncoderOutput:
        """Speech encoder, then the decoder's cross-attention keys/values."""
        outputs = self.sessions[ROLE_SPEECH_ENCODER].run(features)
        return self._decoder.attend(outputs[ENCODER_HIDDEN_STATES], outputs[ENCODER_ATTENTION_MASK])

    def decode(self, prompt: Sequence[int], encoder: EncoderOutput, max_new_tokens: int) -> DecodeResult:
        return self._decoder.decode(list(prompt), encoder, max_new_tokens)

    def hidden_states(self, input_ids: Sequence[int], encoder: EncoderOutput) -> np.ndarray:
        """Decoder hidden states of every position of ``input_ids`` in one pass."""
        return self._decoder.full_pass(list(input_ids), encoder)

    def units(self, hidden_states: np.ndarray, t2u_inputs: T2UInputs) -> dict[str, np.ndarray]:
        """t2u over the decoder states: unit ids and their mask."""
        return self.sessions[ROLE_T2U].run({
            INPUTS_EMBEDS: hidden_states, ATTENTION_MASK: t2u_inputs.attention_mask,
            CHAR_INPUT_IDS: t2u_inputs.char_input_ids, CHAR_COUNT_PER_ID: t2u_inputs.char_count_per_id,
        })

    def vocode(self, units: dict[str, np.ndarray], tgt_lang: str, speaker: int) -> np.ndarray:
        """The waveform of every unit frame.

        The graph's ``waveform_lengths`` follows transformers, which counts a genuine unit equal to the pad id
        (unit 5 after the offset) as padding and so cuts real frames; at batch 1 there is no padding, and the
        whole waveform is the speech of every unit, as generate() returns it.
        """
        manifest = self.bundle.manifest
        vocoder_ids = units_for_vocoder(units[UNIT_IDS], units[UNIT_MASK], manifest.special_ids)
        vocoded = self.sessions[ROLE_VOCODER].run({
            INPUT_IDS: vocoder_ids,
            SPEAKER_ID: np.asarray([[speaker]], dtype=np.int64),
            LANG_ID: np.asarray([[manifest.languages.vocoder[tgt_lang]]], dtype=np.int64),
        })
        return vocoded[WAVEFORM][0].astype(np.float32)
