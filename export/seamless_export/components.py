"""Declarative export specs, one per bundle graph.

Each :class:`PartSpec` names its role, builds a wrapper module around the loaded model, lists the input and
output names exactly as docs/bundle-format.md defines them, declares dynamic axes and builds random inputs for a
:class:`SampleShape`. The export uses ``EXPORT_SHAPE``; verification uses ``VERIFY_SHAPE``, which differs in every
dynamic dimension so that a graph that froze a shape during tracing fails verification; a part called in several
ways (the decoder) lists one verification shape per way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from seamless_daemon.bundle import (
    ENCODER_ATTENTION_MASK,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LAST_HIDDEN_STATE,
    LOGITS,
    ROLE_DECODER,
    ROLE_DECODER_CROSS,
    ROLE_SPEECH_ENCODER,
    ROLE_T2U,
    ROLE_VOCODER,
    cross_cache_names,
    self_cache_names,
)
from torch import nn
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.models.seamless_m4t_v2 import modeling_seamless_m4t_v2 as seamless

logger = logging.getLogger(__name__)

FEATURE_DIM = 160
FIRST_TEXT_TOKEN = 4  # ids below are pad, unk, bos, eos
FIRST_CHAR = 2  # character ids below are pad and unk
FIRST_UNIT = 2  # vocoder ids 0 and 1 are reserved below the offset units
MAX_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class SampleShape:
    """Sizes of one set of random inputs (B, T, L, P, U as in docs/bundle-format.md)."""

    batch: int
    frames: int
    encoder_frames: int
    tokens: int
    past: int
    units: int


EXPORT_SHAPE = SampleShape(batch=2, frames=48, encoder_frames=6, tokens=5, past=4, units=7)
VERIFY_SHAPE = SampleShape(batch=3, frames=72, encoder_frames=9, tokens=2, past=7, units=11)


@dataclass(frozen=True)
class ModelDims:
    hidden_size: int
    num_layers: int
    num_heads: int
    head_dim: int
    vocab_size: int
    char_vocab_size: int
    unit_vocab_size: int
    num_speakers: int
    num_vocoder_langs: int
    unit_pad: int

    @classmethod
    def from_config(cls, config: seamless.SeamlessM4Tv2Config) -> ModelDims:
        heads = config.decoder_attention_heads
        return cls(
            hidden_size=config.hidden_size,
            num_layers=config.decoder_layers,
            num_heads=heads,
            head_dim=config.hidden_size // heads,
            vocab_size=config.vocab_size,
            char_vocab_size=config.char_vocab_size,
            unit_vocab_size=config.unit_hifi_gan_vocab_size,
            num_speakers=config.vocoder_num_spkrs,
            num_vocoder_langs=config.vocoder_num_langs,
            unit_pad=config.t2u_pad_token_id,
        )


Inputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PartSpec:
    role: str
    build: Callable[[nn.Module], nn.Module]
    input_names: Callable[[ModelDims], list[str]]
    output_names: Callable[[ModelDims], list[str]]
    dynamic_axes: Callable[[ModelDims], dict[str, dict[int, str]]]
    make_inputs: Callable[[ModelDims, SampleShape, torch.Generator], Inputs]
    verify_shapes: tuple[SampleShape, ...] = (VERIFY_SHAPE,)
    session_config: Mapping[str, str] = field(default_factory=dict)


def _lengths_mask(batch: int, length: int) -> torch.Tensor:
    """An int64 mask whose first row is full and whose later rows are progressively shorter (min 1)."""
    lengths = torch.tensor([max(1, length - row * max(1, length // 4)) for row in range(batch)])
    return (torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)).long()


# --- speech encoder -------------------------------------------------------------------------------------------


class SpeechEncoderPart(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.model.speech_encoder(input_features=input_features, attention_mask=attention_mask)[0]
        lengths = self.model._compute_sub_sample_lengths_from_attention_mask(attention_mask)
        mask = seamless._compute_new_attention_mask(hidden_states=hidden, seq_lens=lengths)
        return hidden, mask.long()


def _speech_encoder_inputs(dims: ModelDims, shape: SampleShape, generator: torch.Generator) -> Inputs:
    features = torch.randn(shape.batch, shape.frames, FEATURE_DIM, generator=generator)
    return {"input_features": features, "attention_mask": _lengths_mask(shape.batch, shape.frames)}


SPEECH_ENCODER = PartSpec(
    role=ROLE_SPEECH_ENCODER,
    build=SpeechEncoderPart,
    input_names=lambda dims: ["input_features", "attention_mask"],
    output_names=lambda dims: ["encoder_hidden_states", "encoder_attention_mask"],
    dynamic_axes=lambda dims: {
        "input_features": {0: "B", 1: "T"},
        "attention_mask": {0: "B", 1: "T"},
        "encoder_hidden_states": {0: "B", 1: "S"},
        "encoder_attention_mask": {0: "B", 1: "S"},
    },
    make_inputs=_speech_encoder_inputs,
)


# --- text decoder: cross-attention keys and values -----------------------------------------------------------


class DecoderCrossPart(nn.Module):
    """The cross-attention key and value projections of every decoder layer, run once per utterance."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cross: list[torch.Tensor] = []
        for layer in self.model.text_decoder.layers:
            attention = layer.cross_attention
            shape = (*encoder_hidden_states.shape[:-1], -1, attention.head_dim)
            for projection in (attention.k_proj, attention.v_proj):
                cross.append(projection(encoder_hidden_states).view(shape).transpose(1, 2))
        return tuple(cross)


def _decoder_cross_inputs(dims: ModelDims, shape: SampleShape, generator: torch.Generator) -> Inputs:
    hidden = torch.randn(shape.batch, shape.encoder_frames, dims.hidden_size, generator=generator)
    return {ENCODER_HIDDEN_STATES: hidden}


DECODER_CROSS = PartSpec(
    role=ROLE_DECODER_CROSS,
    build=DecoderCrossPart,
    input_names=lambda dims: [ENCODER_HIDDEN_STATES],
    output_names=lambda dims: cross_cache_names(dims.num_layers),
    dynamic_axes=lambda dims: {
        ENCODER_HIDDEN_STATES: {0: "B", 1: "S"},
        **{name: {0: "B", 2: "S"} for name in cross_cache_names(dims.num_layers)},
    },
    make_inputs=_decoder_cross_inputs,
)


# --- text decoder: one graph for every step and for the full pass ---------------------------------------------


class TiedProjection(torch.autograd.Function):
    """``hidden @ weight.T`` exported as ``FusedMatMul(transB=1)`` on the weight itself.

    The vocabulary projection is tied to the token embedding. Written as ``MatMul(hidden, Transpose(weight))`` it
    would be constant-folded into a second, transposed copy of the table (1 GB at the released size); reading the
    embedding's own initializer transposed keeps one copy on disk and in memory.
    """

    @staticmethod
    def forward(ctx: object, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return torch.matmul(hidden, weight.t())

    @staticmethod
    def symbolic(graph: object, hidden: object, weight: object) -> object:
        logits = graph.op("com.microsoft::FusedMatMul", hidden, weight, transA_i=0, transB_i=1, alpha_f=1.0)
        # A custom-domain op has no shape inference: state the output type ([..., vocabulary]) for the exporter.
        sizes = hidden.type().varyingSizes()
        logits.setType(hidden.type().with_sizes([*sizes[:-1], weight.type().varyingSizes()[0]]))
        return logits


class DecoderPart(nn.Module):
    """One decoder pass over ``L`` new tokens after ``P`` cached ones (``P`` may be 0).

    Cross-attention keys/values come from :class:`DecoderCrossPart`; the encoder hidden states themselves are not
    needed, only their length (a zero placeholder). Logits are for the last position only (the next token); the
    hidden states of every new position are returned, which is what t2u consumes.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor, *caches: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        layers = self.model.config.decoder_layers
        past = [caches[i : i + 2] for i in range(0, 2 * layers, 2)]
        cross = [caches[i : i + 2] for i in range(2 * layers, 4 * layers, 2)]
        cache = EncoderDecoderCache(
            DynamicCache([(key, value) for key, value in past]),
            DynamicCache([(key, value) for key, value in cross]),
        )
        for index in range(layers):
            cache.is_updated[index] = True
        placeholder = torch.zeros_like(encoder_attention_mask, dtype=torch.float32).unsqueeze(-1)
        placeholder = placeholder.expand(-1, -1, self.model.config.hidden_size)
        out = self.model.text_decoder(
            input_ids=input_ids,
            encoder_hidden_states=placeholder,
            encoder_attention_mask=encoder_attention_mask,
            past_key_values=cache,
            use_cache=True,
        )
        present: list[torch.Tensor] = []
        for layer in cache.self_attention_cache.layers:
            present += [layer.keys, layer.values]
        hidden = out.last_hidden_state
        logits = TiedProjection.apply(hidden[:, -1:, :], self.model.lm_head.weight)
        return (logits, hidden, *present)


def _decoder_inputs(dims: ModelDims, shape: SampleShape, generator: torch.Generator) -> Inputs:
    inputs: Inputs = {
        INPUT_IDS: torch.randint(FIRST_TEXT_TOKEN, dims.vocab_size, (shape.batch, shape.tokens), generator=generator),
        ENCODER_ATTENTION_MASK: _lengths_mask(shape.batch, shape.encoder_frames),
    }
    for name in self_cache_names("past", dims.num_layers):
        inputs[name] = torch.randn(shape.batch, dims.num_heads, shape.past, dims.head_dim, generator=generator)
    for name in cross_cache_names(dims.num_layers):
        inputs[name] = torch.randn(shape.batch, dims.num_heads, shape.encoder_frames, dims.head_dim,
                                   generator=generator)
    return inputs


def _decoder_axes(dims: ModelDims) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {
        INPUT_IDS: {0: "B", 1: "L"},
        ENCODER_ATTENTION_MASK: {0: "B", 1: "S"},
        LOGITS: {0: "B"},
        LAST_HIDDEN_STATE: {0: "B", 1: "L"},
    }
    for name in self_cache_names("past", dims.num_layers):
        axes[name] = {0: "B", 2: "P"}
    for name in cross_cache_names(dims.num_layers):
        axes[name] = {0: "B", 2: "S"}
    for name in self_cache_names("present", dims.num_layers):
        axes[name] = {0: "B", 2: "P+L"}
    return axes


DECODER = PartSpec(
    role=ROLE_DECODER,
    build=DecoderPart,
    input_names=lambda dims: [
        INPUT_IDS, ENCODER_ATTENTION_MASK, *self_cache_names("past", dims.num_layers),
        *cross_cache_names(dims.num_layers),
    ],
    output_names=lambda dims: [LOGITS, LAST_HIDDEN_STATE, *self_cache_names("present", dims.num_layers)],
    dynamic_axes=_decoder_axes,
    make_inputs=_decoder_inputs,
    # A cached step (L=1), a longer step after a past, and the full pass without a past (the first step, the pass
    # that feeds t2u): every way the runtime calls the graph.
    verify_shapes=(
        SampleShape(batch=3, frames=72, encoder_frames=9, tokens=1, past=7, units=11),
        SampleShape(batch=3, frames=72, encoder_frames=9, tokens=2, past=5, units=11),
        SampleShape(batch=2, frames=72, encoder_frames=7, tokens=9, past=0, units=11),
    ),
    # FusedMatMul and Gather read the same embedding initializer; pre-packing would copy it for FusedMatMul.
    session_config={"session.disable_prepacking": "1"},
)


# --- text-to-unit ---------------------------------------------------------------------------------------------


class T2UPart(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        char_input_ids: torch.Tensor,
        char_count_per_id: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.t2u_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            char_input_ids=char_input_ids,
            char_count_per_id=char_count_per_id,
        )
        return out.last_hidden_state.argmax(dim=-1), out.padding_mask.long()


def _t2u_inputs(dims: ModelDims, shape: SampleShape, generator: torch.Generator) -> Inputs:
    tokens = shape.tokens + shape.past  # a real t2u input: the whole generated sequence
    mask = _lengths_mask(shape.batch, tokens)
    counts = torch.randint(1, MAX_CHARS_PER_TOKEN + 1, (shape.batch, tokens), generator=generator)
    counts[:, 0] = 0
    lengths = mask.sum(dim=1)
    for row, length in enumerate(lengths.tolist()):
        counts[row, length - 1 :] = 0
    chars = int(counts.sum(dim=1).max())
    char_ids = torch.randint(FIRST_CHAR, dims.char_vocab_size, (shape.batch, chars), generator=generator)
    char_ids = char_ids * (torch.arange(chars).unsqueeze(0) < counts.sum(dim=1, keepdim=True)).long()
    return {
        "inputs_embeds": torch.randn(shape.batch, tokens, dims.hidden_size, generator=generator),
        "attention_mask": mask,
        "char_input_ids": char_ids,
        "char_count_per_id": counts,
    }


T2U = PartSpec(
    role=ROLE_T2U,
    build=T2UPart,
    input_names=lambda dims: ["inputs_embeds", "attention_mask", "char_input_ids", "char_count_per_id"],
    output_names=lambda dims: ["unit_ids", "unit_mask"],
    dynamic_axes=lambda dims: {
        "inputs_embeds": {0: "B", 1: "L"},
        "attention_mask": {0: "B", 1: "L"},
        "char_input_ids": {0: "B", 1: "C"},
        "char_count_per_id": {0: "B", 1: "L"},
        "unit_ids": {0: "B", 1: "U"},
        "unit_mask": {0: "B", 1: "U"},
    },
    make_inputs=_t2u_inputs,
)


# --- vocoder --------------------------------------------------------------------------------------------------


class VocoderPart(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, speaker_id: torch.Tensor, lang_id: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        waveform, lengths = self.model.vocoder(input_ids=input_ids, speaker_id=speaker_id, lang_id=lang_id)
        return waveform, lengths.reshape(-1)


def _vocoder_inputs(dims: ModelDims, shape: SampleShape, generator: torch.Generator) -> Inputs:
    units = torch.randint(FIRST_UNIT, dims.unit_vocab_size, (shape.batch, shape.units), generator=generator)
    real = _lengths_mask(shape.batch, shape.units).bool()
    units = torch.where(real, units, torch.full_like(units, dims.unit_pad))
    speakers = torch.arange(shape.batch).remainder(dims.num_speakers).unsqueeze(1)
    langs = torch.arange(shape.batch).remainder(dims.num_vocoder_langs).unsqueeze(1)
    return {"input_ids": units, "speaker_id": speakers, "lang_id": langs}


VOCODER = PartSpec(
    role=ROLE_VOCODER,
    build=VocoderPart,
    input_names=lambda dims: ["input_ids", "speaker_id", "lang_id"],
    output_names=lambda dims: ["waveform", "waveform_lengths"],
    dynamic_axes=lambda dims: {
        "input_ids": {0: "B", 1: "U"},
        "speaker_id": {0: "B"},
        "lang_id": {0: "B"},
        "waveform": {0: "B", 1: "N"},
        "waveform_lengths": {0: "B"},
    },
    make_inputs=_vocoder_inputs,
)

PARTS: tuple[PartSpec, ...] = (SPEECH_ENCODER, DECODER_CROSS, DECODER, T2U, VOCODER)
