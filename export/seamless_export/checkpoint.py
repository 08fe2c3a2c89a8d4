"""Seeded random-weight SeamlessM4T v2 checkpoints in the hub's folder format.

The folder holds config.json, generation_config.json (with the language, subword and character maps),
model.safetensors, preprocessor_config.json and sentencepiece.bpe.model (trained in memory on generated text).
Weights are shaped (see :class:`seamless_export.presets.WeightShaping`) so that greedy generation ends on eos for
some inputs and at the length limit for others, and so that character and unit durations exceed 1.
"""

from __future__ import annotations

import io
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import sentencepiece
import torch
from transformers import (
    GenerationConfig,
    SeamlessM4TFeatureExtractor,
    SeamlessM4Tv2Config,
    SeamlessM4Tv2ForSpeechToSpeech,
    SeamlessM4Tv2Model,
)

from seamless_export.presets import CheckpointPreset

logger = logging.getLogger(__name__)

SPM_FILE = "sentencepiece.bpe.model"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
T2U_CONTROL_UNITS = 4  # t2u ids 0..3 are bos, pad, eos, unk; real units start at vocoder_offset
VOCODER_OFFSET = 4
CHAR_PAD_ID, CHAR_UNK_ID = 0, 1
FIRST_CHAR_ID = 2
SPACE = "\u2581"
LAYOUTS = ("full", "speech-to-speech")

_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiouéá"
_PUNCTUATION = (",", ".", "?", "!")
_SYLLABLES_PER_WORD = (1, 3)
_WORDS_PER_SENTENCE = (3, 10)
_LEXICON_SIZE = 300
_PUNCTUATION_RATE = 0.15


@dataclass(frozen=True)
class TextVocabulary:
    """The text side of a checkpoint: subword table, language tokens and character table."""

    spm_model: bytes
    id_to_text: dict[str, str]
    lang_token_ids: dict[str, int]
    char_to_id: dict[str, int]

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_text)


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    preset: str
    seed: int
    layout: str
    num_parameters: int


def _make_corpus(rng: random.Random, sentences: int) -> list[str]:
    def word() -> str:
        count = rng.randint(*_SYLLABLES_PER_WORD)
        return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(count))

    lexicon = [word() for _ in range(_LEXICON_SIZE)]
    lines = []
    for _ in range(sentences):
        words = [rng.choice(lexicon) for _ in range(rng.randint(*_WORDS_PER_SENTENCE))]
        if rng.random() < _PUNCTUATION_RATE:
            words[rng.randrange(len(words))] += rng.choice(_PUNCTUATION)
        lines.append(" ".join(words))
    return lines


def _train_sentencepiece(corpus: list[str], vocab_size: int) -> bytes:
    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        num_threads=1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return buffer.getvalue()


def build_vocabulary(preset: CheckpointPreset, seed: int) -> TextVocabulary:
    """Train the SentencePiece model and derive the subword, language and character tables."""
    corpus = _make_corpus(random.Random(seed), preset.corpus_sentences)
    spm_model = _train_sentencepiece(corpus, preset.spm_vocab_size)
    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    pieces = [processor.id_to_piece(index) for index in range(processor.get_piece_size())]
    id_to_text = {str(index): piece for index, piece in enumerate(pieces)}
    lang_token_ids = {}
    for lang in preset.languages:
        lang_token_ids[lang] = len(id_to_text)
        id_to_text[str(len(id_to_text))] = f"__{lang}__"
    characters = sorted({ch for piece in pieces[EOS_ID + 1 :] for ch in piece})
    char_to_id = {ch: FIRST_CHAR_ID + index for index, ch in enumerate(characters)}
    return TextVocabulary(spm_model, id_to_text, lang_token_ids, char_to_id)


def build_config(preset: CheckpointPreset, vocab: TextVocabulary) -> SeamlessM4Tv2Config:
    languages = len(preset.languages)
    t2u_vocab_size = T2U_CONTROL_UNITS + preset.unit_count + languages
    return SeamlessM4Tv2Config(
        **preset.config,
        vocab_size=vocab.vocab_size,
        t2u_vocab_size=t2u_vocab_size,
        unit_hifi_gan_vocab_size=t2u_vocab_size - VOCODER_OFFSET,
        char_vocab_size=FIRST_CHAR_ID + len(vocab.char_to_id),
        t2u_variance_predictor_embed_dim=preset.config["hidden_size"],
        vocoder_num_langs=languages,
        vocoder_num_spkrs=preset.num_speakers,
        vocoder_offset=VOCODER_OFFSET,
        max_new_tokens=preset.max_new_tokens,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=EOS_ID,
    )


def build_generation_config(
    config: SeamlessM4Tv2Config, preset: CheckpointPreset, vocab: TextVocabulary
) -> GenerationConfig:
    first_t2u_lang = T2U_CONTROL_UNITS + preset.unit_count
    generation = GenerationConfig(
        bos_token_id=BOS_ID,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=EOS_ID,
        max_new_tokens=preset.max_new_tokens,
    )
    generation.text_decoder_lang_to_code_id = dict(vocab.lang_token_ids)
    generation.t2u_lang_code_to_id = {lang: first_t2u_lang + i for i, lang in enumerate(preset.languages)}
    generation.vocoder_lang_code_to_id = {lang: i for i, lang in enumerate(preset.languages)}
    generation.id_to_text = dict(vocab.id_to_text)
    generation.char_to_id = dict(vocab.char_to_id)
    generation._from_model_config = False
    return generation


def _reset_linear(layer: torch.nn.Linear, std: float, bias: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
        if layer.bias is not None:
            layer.bias.fill_(bias)


def shape_weights(model: SeamlessM4Tv2Model, preset: CheckpointPreset, generator: torch.Generator) -> None:
    """Adjust random weights so that generation walks the real paths (see WeightShaping)."""
    shaping = preset.shaping
    with torch.no_grad():
        model.shared.weight[EOS_ID] *= shaping.eos_row_scale
        model.t2u_model.lm_head.weight[:T2U_CONTROL_UNITS] = 0.0
        for layer in model.text_decoder.layers:
            layer.cross_attention.v_proj.weight *= shaping.cross_attention_gain
            layer.cross_attention.out_proj.weight *= shaping.cross_attention_gain
    for predictor in (model.t2u_model.model.decoder.duration_predictor, model.vocoder.dur_predictor):
        fan_in = predictor.proj.in_features
        _reset_linear(predictor.proj, shaping.duration_std / math.sqrt(fan_in), shaping.duration_bias, generator)


def write_random_checkpoint(
    directory: Path, preset: CheckpointPreset, seed: int = 0, layout: str = "full"
) -> CheckpointInfo:
    """Write a seeded random checkpoint of ``preset`` into ``directory`` (created if missing)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = build_vocabulary(preset, seed)
    config = build_config(preset, vocab)
    torch.manual_seed(seed)
    model_class = SeamlessM4Tv2Model if layout == "full" else SeamlessM4Tv2ForSpeechToSpeech
    model = model_class(config).eval()
    shape_weights(model, preset, torch.Generator().manual_seed(seed))
    model.generation_config = build_generation_config(config, preset, vocab)
    model.save_pretrained(directory)
    SeamlessM4TFeatureExtractor(sampling_rate=config.sampling_rate).save_pretrained(directory)
    (directory / SPM_FILE).write_bytes(vocab.spm_model)
    num_parameters = sum(param.numel() for param in model.parameters())
    logger.info("wrote %s checkpoint (%d parameters, seed %d) to %s", preset.name, num_parameters, seed, directory)
    return CheckpointInfo(directory, preset.name, seed, layout, num_parameters)
