"""Declarative size presets for random SeamlessM4T v2 checkpoints.

A preset is data only: the architecture (``config``, keyword arguments of ``SeamlessM4Tv2Config``), the text
side (SentencePiece vocabulary size, target languages), the vocoder speakers and the weight adjustments that make
random weights walk the real code paths (eos endings, length-limit endings, durations above 1, valid unit ids).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Output rate of the vocoder: the product of the HiFi-GAN upsample rates is 320 samples per 20 ms unit frame.
VOCODER_UPSAMPLE_RATES = (5, 4, 4, 2, 2)
VOCODER_UPSAMPLE_KERNELS = (11, 8, 8, 4, 4)
DEFAULT_LANGUAGES = ("eng", "fra", "spa", "deu")


@dataclass(frozen=True)
class WeightShaping:
    """Adjustments applied to freshly initialised weights so generation exercises every path.

    ``eos_row_scale`` multiplies the eos row of the tied text embedding / lm_head: a larger row makes the eos
    logit win on some inputs (ending on eos) and lose on others (ending at the length limit).
    Duration predictors get weights of std ``duration_std / sqrt(fan_in)`` and bias ``duration_bias``: their
    output ``x`` becomes ``round(expm1(x))`` frames, so a bias near log(1 + d) centres durations on d.
    ``cross_attention_gain`` multiplies the text decoder's cross-attention value and output projections so the
    generated text depends on the input speech rather than on the position alone.
    """

    eos_row_scale: float
    duration_bias: float
    duration_std: float
    cross_attention_gain: float


@dataclass(frozen=True)
class CheckpointPreset:
    name: str
    config: Mapping[str, Any]
    spm_vocab_size: int
    unit_count: int
    num_speakers: int
    max_new_tokens: int
    shaping: WeightShaping
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    corpus_sentences: int = 400
    extra: Mapping[str, Any] = field(default_factory=dict)


_VOCODER_COMMON: dict[str, Any] = {
    "upsample_rates": list(VOCODER_UPSAMPLE_RATES),
    "upsample_kernel_sizes": list(VOCODER_UPSAMPLE_KERNELS),
}

TINY = CheckpointPreset(
    name="tiny",
    config={
        "hidden_size": 32,
        "encoder_layers": 1,
        "encoder_ffn_dim": 64,
        "encoder_attention_heads": 2,
        "decoder_layers": 2,
        "decoder_ffn_dim": 64,
        "decoder_attention_heads": 2,
        "speech_encoder_layers": 2,
        "speech_encoder_attention_heads": 2,
        "speech_encoder_intermediate_size": 64,
        "conv_depthwise_kernel_size": 7,
        "t2u_encoder_layers": 1,
        "t2u_encoder_ffn_dim": 64,
        "t2u_encoder_attention_heads": 2,
        "t2u_decoder_layers": 1,
        "t2u_decoder_ffn_dim": 64,
        "t2u_decoder_attention_heads": 2,
        "t2u_variance_predictor_hidden_dim": 32,
        "upsample_initial_channel": 32,
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": [[1, 3], [1, 3]],
        "unit_embed_dim": 16,
        "lang_embed_dim": 4,
        "spkr_embed_dim": 4,
        **_VOCODER_COMMON,
    },
    spm_vocab_size=120,
    unit_count=40,
    num_speakers=4,
    max_new_tokens=20,
    shaping=WeightShaping(eos_row_scale=4.0, duration_bias=1.1, duration_std=0.5, cross_attention_gain=10.0),
)

SMALL = CheckpointPreset(
    name="small",
    config={
        "hidden_size": 512,
        "encoder_layers": 1,
        "encoder_ffn_dim": 2048,
        "encoder_attention_heads": 8,
        "decoder_layers": 6,
        "decoder_ffn_dim": 2048,
        "decoder_attention_heads": 8,
        "speech_encoder_layers": 6,
        "speech_encoder_attention_heads": 8,
        "speech_encoder_intermediate_size": 2048,
        "conv_depthwise_kernel_size": 31,
        "t2u_encoder_layers": 2,
        "t2u_encoder_ffn_dim": 2048,
        "t2u_encoder_attention_heads": 8,
        "t2u_decoder_layers": 2,
        "t2u_decoder_ffn_dim": 2048,
        "t2u_decoder_attention_heads": 8,
        "t2u_variance_predictor_hidden_dim": 256,
        "upsample_initial_channel": 256,
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "unit_embed_dim": 256,
        "lang_embed_dim": 64,
        "spkr_embed_dim": 64,
        **_VOCODER_COMMON,
    },
    spm_vocab_size=1000,
    unit_count=500,
    num_speakers=8,
    max_new_tokens=48,
    shaping=WeightShaping(eos_row_scale=3.0, duration_bias=1.1, duration_std=0.5, cross_attention_gain=10.0),
    corpus_sentences=3000,
)

PRESETS: dict[str, CheckpointPreset] = {preset.name: preset for preset in (TINY, SMALL)}


def get_preset(name: str) -> CheckpointPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]
