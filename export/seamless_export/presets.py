"""Declarative size presets for random SeamlessM4T v2 checkpoints.

A preset is data only: the architecture (``config``, keyword arguments of ``SeamlessM4Tv2Config``), the text
side (SentencePiece vocabulary size, languages and the ids each stage gives them), the vocoder speakers and the
weight adjustments that make random weights walk the real code paths (eos endings, length-limit endings,
durations above 1, valid unit ids). ``large`` has the released model's sizes and tables (see ``FullTables``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transformers import SeamlessM4Tv2Config

logger = logging.getLogger(__name__)

# Output rate of the vocoder: the product of the HiFi-GAN upsample rates is 320 samples per 20 ms unit frame.
VOCODER_UPSAMPLE_RATES = (5, 4, 4, 2, 2)
VOCODER_UPSAMPLE_KERNELS = (11, 8, 8, 4, 4)
DEFAULT_LANGUAGES = ("eng", "fra", "spa", "deu")
# The config keys that ``--layers N`` sets: one per stack (text encoder, speech encoder, text decoder, t2u).
LAYER_KEYS = (
    "encoder_layers",
    "speech_encoder_layers",
    "decoder_layers",
    "t2u_encoder_layers",
    "t2u_decoder_layers",
)


@dataclass(frozen=True)
class WeightShaping:
    """Adjustments applied to freshly initialised weights so generation exercises every path.

    ``eos_row_scale`` multiplies the eos row of the tied text embedding / lm_head: a larger row makes the eos
    logit win on some inputs (ending on eos) and lose on others (ending at the length limit).
    Duration predictors get weights of std ``duration_std / sqrt(fan_in)`` and bias ``duration_bias``: their
    output ``x`` becomes ``round(expm1(x))`` frames, so a bias near log(1 + d) centres durations on d.
    ``cross_attention_gain`` multiplies the text decoder's cross-attention value and output projections so the
    generated text depends on the input speech rather than on the position alone.
    ``cross_attention_query_key_gain`` multiplies its query and key projections (attention logits grow by its
    square): each step then attends to a few encoder frames, so the text changes from step to step instead of
    repeating one token, which random weights of the released width otherwise do.
    ``eos_logit_offset``, when set, adds a constant to the eos logit: the text decoder's final layer norm pins
    the last hidden dimension to 1, that column of the tied embedding is zeroed except for the eos row, which
    holds the offset. The eos logit is then the offset plus ``eos_row_scale`` times a random projection: at the
    released width the top logit of 256k random rows sits in a narrow band, and a scaled row alone either ends
    an input at once or never.
    """

    eos_row_scale: float
    duration_bias: float
    duration_std: float
    cross_attention_gain: float
    cross_attention_query_key_gain: float = 1.0
    eos_logit_offset: float | None = None


@dataclass(frozen=True)
class LanguageTables:
    """The languages each stage knows, in id order, and the first id each list takes.

    ``text``: language tokens of the text decoder; ``units``: language units of the t2u model; ``vocoder``:
    rows of the vocoder's language embedding (ids from 0). A first id of None places the text languages right
    after the SentencePiece pieces and the unit languages right after the units. The languages with speech
    output are those in all three lists.
    """

    text: tuple[str, ...]
    units: tuple[str, ...]
    vocoder: tuple[str, ...]
    first_text_id: int | None = None
    first_unit_id: int | None = None

    @classmethod
    def same(cls, languages: tuple[str, ...]) -> LanguageTables:
        """Every stage knows the same languages, placed right after the pieces and the units."""
        return cls(text=languages, units=languages, vocoder=languages)

    @property
    def speech(self) -> tuple[str, ...]:
        return tuple(lang for lang in self.vocoder if lang in self.text and lang in self.units)


@dataclass(frozen=True)
class FullTables:
    """Real-size tables: the table sizes come from the config instead of from what the tables hold.

    ``id_to_text`` covers all ``vocab_size`` ids: the ids the SentencePiece trainer cannot produce from the
    generated corpus get deterministic synthesised pieces (the runtime needs no tokenizer, only this map).
    The character table holds ``char_ids`` ids (pad, unk, then characters), synthesised past the corpus's own.
    """

    char_ids: int


@dataclass(frozen=True)
class CheckpointPreset:
    name: str
    config: Mapping[str, Any]
    spm_vocab_size: int
    unit_count: int
    num_speakers: int
    max_new_tokens: int
    shaping: WeightShaping
    languages: LanguageTables = LanguageTables.same(DEFAULT_LANGUAGES)
    corpus_sentences: int = 400
    full_tables: FullTables | None = None
    # Seeded normal init of each tensor on its own, streamed to disk one tensor at a time, instead of
    # transformers' init of a whole model in memory (see seamless_export.random_weights).
    streamed: bool = False
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

# The released checkpoint's language tables, as transformers' convert_fairseq2_to_hf.py for SeamlessM4T v2 built
# facebook/seamless-m4t-v2-large: 98 text languages with tokens __xxx__ from id 256001 in this order (its
# integration tests expect eng 256022, fra 256026, rus 256074, swh 256084), 38 t2u languages from id
# 10000 units + 5 control units (bos, pad, eos, unk, mask) + 38 = 10043, and 36 vocoder languages from 0.
RELEASED_TEXT_LANGUAGES = (
    "afr", "amh", "arb", "ary", "arz", "asm", "azj", "bel", "ben", "bos", "bul", "cat", "ceb", "ces", "ckb",
    "cmn", "cmn_Hant", "cym", "dan", "deu", "ell", "eng", "est", "eus", "fin", "fra", "fuv", "gaz", "gle",
    "glg", "guj", "heb", "hin", "hrv", "hun", "hye", "ibo", "ind", "isl", "ita", "jav", "jpn", "kan", "kat",
    "kaz", "khk", "khm", "kir", "kor", "lao", "lit", "lug", "luo", "lvs", "mai", "mal", "mar", "mkd", "mlt",
    "mni", "mya", "nld", "nno", "nob", "npi", "nya", "ory", "pan", "pbt", "pes", "pol", "por", "ron", "rus",
    "sat", "slk", "slv", "sna", "snd", "som", "spa", "srp", "swe", "swh", "tam", "tel", "tgk", "tgl", "tha",
    "tur", "ukr", "urd", "uzn", "vie", "yor", "yue", "zlm", "zul",
)
RELEASED_UNIT_LANGUAGES = (
    "arb", "ben", "cat", "ces", "cmn", "cym", "dan", "deu", "eng", "est", "fin", "fra", "hin", "ind", "ita",
    "jpn", "kan", "kor", "mlt", "nld", "pes", "pol", "por", "ron", "rus", "slk", "spa", "swe", "swh", "tam",
    "tel", "tgl", "tha", "tur", "ukr", "urd", "uzn", "vie",
)
RELEASED_VOCODER_LANGUAGES = (
    "arb", "ben", "cat", "ces", "cmn", "cym", "dan", "deu", "eng", "est", "fin", "fra", "hin", "ind", "ita",
    "jpn", "kor", "mlt", "nld", "pes", "pol", "por", "ron", "rus", "slk", "spa", "swe", "swh", "tel", "tgl",
    "tha", "tur", "ukr", "urd", "uzn", "vie",
)
RELEASED_FIRST_TEXT_LANGUAGE_ID = 256001
RELEASED_FIRST_UNIT_LANGUAGE_ID = 10043
# The released character table: the converter maps 10904 character ids (char_vocab_size, 10943, is larger).
RELEASED_CHAR_IDS = 10904

_RELEASED = SeamlessM4Tv2Config()

LARGE = CheckpointPreset(
    name="large",
    config={},  # every size is SeamlessM4Tv2Config's default: the released model's
    spm_vocab_size=1000,
    unit_count=_RELEASED.unit_hifi_gan_vocab_size,
    num_speakers=_RELEASED.vocoder_num_spkrs,
    max_new_tokens=_RELEASED.max_new_tokens,
    # Measured on noise of 0.5-4 s, 16 inputs, 40 new tokens, greedy. Query/key gain 1 repeats one token; 4 gives
    # 15-30 distinct tokens. A scaled eos row alone (scale 4-8) ends 1-2 of 8 inputs with 4 layers, and scaling
    # it further changes nothing. Offset 2.1 over a scale-1 row ends on eos after 2-35 tokens for 12, 6 and 8
    # of 16 inputs with 1, 4 and 24 layers, the others at the limit; 1 of 16 (1 and 24 layers) ends at once.
    shaping=WeightShaping(
        eos_row_scale=1.0,
        duration_bias=1.1,
        duration_std=0.5,
        cross_attention_gain=10.0,
        cross_attention_query_key_gain=4.0,
        eos_logit_offset=2.1,
    ),
    languages=LanguageTables(
        text=RELEASED_TEXT_LANGUAGES,
        units=RELEASED_UNIT_LANGUAGES,
        vocoder=RELEASED_VOCODER_LANGUAGES,
        first_text_id=RELEASED_FIRST_TEXT_LANGUAGE_ID,
        first_unit_id=RELEASED_FIRST_UNIT_LANGUAGE_ID,
    ),
    corpus_sentences=3000,
    full_tables=FullTables(char_ids=RELEASED_CHAR_IDS),
    streamed=True,
)

PRESETS: dict[str, CheckpointPreset] = {preset.name: preset for preset in (TINY, SMALL, LARGE)}


def get_preset(name: str) -> CheckpointPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]


def with_layers(preset: CheckpointPreset, layers: int) -> CheckpointPreset:
    """``preset`` with ``layers`` layers in every stack; every width and table keeps its size."""
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(f"layers must be a positive integer, not {layers!r}")
    config = {**preset.config, **dict.fromkeys(LAYER_KEYS, layers)}
    return dataclasses.replace(preset, config=config)
