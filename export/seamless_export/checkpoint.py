"""Seeded random-weight SeamlessM4T v2 checkpoints in the hub's folder format.

The folder holds config.json, generation_config.json (with the language, subword and character maps),
model.safetensors, preprocessor_config.json and sentencepiece.bpe.model (trained in memory on generated text).
Weights are shaped (see :class:`seamless_export.presets.WeightShaping`) so that greedy generation ends on eos for
some inputs and at the length limit for others, and so that character and unit durations exceed 1.

Presets with ``full_tables`` (``large``) keep the config's own table sizes: ``id_to_text`` covers the whole
vocabulary, with deterministic synthesised pieces for the ids the SentencePiece model does not have (the runtime
needs no tokenizer), and the character table is filled with characters of several scripts.
"""

from __future__ import annotations

import io
import logging
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

from seamless_export.presets import CheckpointPreset, with_layers
from seamless_export.random_weights import ShapingPlan, shape_model, write_streamed_weights

logger = logging.getLogger(__name__)

SPM_FILE = "sentencepiece.bpe.model"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
T2U_CONTROL_UNITS = 4  # t2u ids 0..3 are bos, pad, eos, unk; real units start at vocoder_offset
VOCODER_OFFSET = 4
CHAR_PAD_ID, CHAR_UNK_ID = 0, 1
FIRST_CHAR_ID = 2
SPACE = "\u2581"
LAYOUTS = ("full", "speech-to-speech")
STORED_DTYPE = torch.float32

_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiouéá"
_PUNCTUATION = (",", ".", "?", "!")
_SYLLABLES_PER_WORD = (1, 3)
_WORDS_PER_SENTENCE = (3, 10)
_LEXICON_SIZE = 300
_PUNCTUATION_RATE = 0.15
# Synthesised pieces (full-size tables): 1-4 characters, half of them word starts, a few lone symbols.
_SYNTHETIC_PIECE_LENGTHS = (1, 4)
_WORD_START_RATE = 0.5
_SYMBOL_PIECE_RATE = 0.03
_EXTRA_SYMBOLS = "0123456789,.?!;:'\"-()%&/"
# Unicode blocks (first, last code point) that fill a full-size character table past the corpus's characters:
# Latin extended, Greek, Cyrillic, Hebrew and Arabic, Indic scripts, Thai, Hangul jamo, kana, CJK ideographs.
_EXTRA_CHARACTER_BLOCKS = (
    (0x00C0, 0x024F),
    (0x0370, 0x03FF),
    (0x0400, 0x04FF),
    (0x0590, 0x06FF),
    (0x0900, 0x0DFF),
    (0x0E00, 0x0E7F),
    (0x1100, 0x11FF),
    (0x3040, 0x30FF),
    (0x4E00, 0x9FFF),
)


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
class LanguageMaps:
    """The three language maps of generation_config.json."""

    text: dict[str, int]
    units: dict[str, int]
    vocoder: dict[str, int]


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    preset: str
    seed: int
    layout: str
    num_parameters: int
    layers: int | None = None


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


def _pieces_of(spm_model: bytes) -> list[str]:
    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    return [processor.id_to_piece(index) for index in range(processor.get_piece_size())]


def _fitted_vocabulary(preset: CheckpointPreset, spm_model: bytes, pieces: list[str]) -> TextVocabulary:
    """Tables that hold exactly what the SentencePiece model has, language tokens right after its pieces."""
    id_to_text = {str(index): piece for index, piece in enumerate(pieces)}
    lang_token_ids = {}
    for lang in preset.languages.text:
        lang_token_ids[lang] = len(id_to_text)
        id_to_text[str(len(id_to_text))] = f"__{lang}__"
    characters = sorted({ch for piece in pieces[EOS_ID + 1 :] for ch in piece})
    char_to_id = {ch: FIRST_CHAR_ID + index for index, ch in enumerate(characters)}
    return TextVocabulary(spm_model, id_to_text, lang_token_ids, char_to_id)


def _full_character_table(pieces: list[str], char_ids: int) -> list[str]:
    """``char_ids - FIRST_CHAR_ID`` characters: the corpus's own, then symbols, then letters of other scripts."""
    wanted = char_ids - FIRST_CHAR_ID
    table = dict.fromkeys(sorted({ch for piece in pieces[EOS_ID + 1 :] for ch in piece}))
    table.update(dict.fromkeys(ch for ch in _EXTRA_SYMBOLS if ch not in table))
    for first, last in _EXTRA_CHARACTER_BLOCKS:
        extra = (chr(code) for code in range(first, last + 1))
        table.update(dict.fromkeys(ch for ch in extra if ch.isprintable() and not ch.isspace() and ch not in table))
        if len(table) >= wanted:
            return list(table)[:wanted]
    raise ValueError(f"cannot fill a character table of {char_ids} ids (only {len(table)} characters)")


def _synthetic_piece(rng: random.Random, letters: list[str], symbols: list[str]) -> str:
    if rng.random() < _SYMBOL_PIECE_RATE:
        return rng.choice(symbols)
    body = "".join(rng.choices(letters, k=rng.randint(*_SYNTHETIC_PIECE_LENGTHS)))
    return SPACE + body if rng.random() < _WORD_START_RATE else body


def _full_vocabulary(
    preset: CheckpointPreset, spm_model: bytes, pieces: list[str], vocab_size: int, rng: random.Random
) -> TextVocabulary:
    """Tables of the config's sizes: trained pieces, language tokens where the preset puts them, and
    synthesised pieces (from the whole character table) for every other id."""
    languages = preset.languages
    first = len(pieces) if languages.first_text_id is None else languages.first_text_id
    if first < len(pieces) or first + len(languages.text) > vocab_size:
        raise ValueError(f"language tokens {first}..{first + len(languages.text) - 1} do not fit between the "
                         f"{len(pieces)} trained pieces and the vocabulary size {vocab_size}")
    lang_token_ids = {lang: first + index for index, lang in enumerate(languages.text)}
    lang_tokens = {token: f"__{lang}__" for lang, token in lang_token_ids.items()}
    characters = _full_character_table(pieces, preset.full_tables.char_ids)
    char_to_id = {ch: FIRST_CHAR_ID + index for index, ch in enumerate(characters)}
    letters = [ch for ch in characters if ch.isalpha()]
    symbols = [ch for ch in characters if not ch.isalpha() and ch != SPACE]
    id_to_text = {}
    for index in range(vocab_size):
        if index < len(pieces):
            text = pieces[index]
        elif index in lang_tokens:
            text = lang_tokens[index]
        else:
            text = _synthetic_piece(rng, letters, symbols)
        id_to_text[str(index)] = text
    return TextVocabulary(spm_model, id_to_text, lang_token_ids, char_to_id)


def build_vocabulary(preset: CheckpointPreset, seed: int) -> TextVocabulary:
    """Train the SentencePiece model and derive the subword, language and character tables."""
    rng = random.Random(seed)
    spm_model = _train_sentencepiece(_make_corpus(rng, preset.corpus_sentences), preset.spm_vocab_size)
    pieces = _pieces_of(spm_model)
    if preset.full_tables is None:
        return _fitted_vocabulary(preset, spm_model, pieces)
    vocab_size = SeamlessM4Tv2Config(**preset.config).vocab_size
    return _full_vocabulary(preset, spm_model, pieces, vocab_size, rng)


def _fitted_config(preset: CheckpointPreset, vocab: TextVocabulary) -> SeamlessM4Tv2Config:
    t2u_vocab_size = T2U_CONTROL_UNITS + preset.unit_count + len(preset.languages.units)
    return SeamlessM4Tv2Config(
        **preset.config,
        vocab_size=vocab.vocab_size,
        t2u_vocab_size=t2u_vocab_size,
        unit_hifi_gan_vocab_size=t2u_vocab_size - VOCODER_OFFSET,
        char_vocab_size=FIRST_CHAR_ID + len(vocab.char_to_id),
        t2u_variance_predictor_embed_dim=preset.config["hidden_size"],
        vocoder_num_langs=len(preset.languages.vocoder),
        vocoder_num_spkrs=preset.num_speakers,
        vocoder_offset=VOCODER_OFFSET,
        max_new_tokens=preset.max_new_tokens,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=EOS_ID,
    )


def language_maps(preset: CheckpointPreset, vocab: TextVocabulary) -> LanguageMaps:
    languages = preset.languages
    first_unit = languages.first_unit_id
    if first_unit is None:
        first_unit = T2U_CONTROL_UNITS + preset.unit_count
    return LanguageMaps(
        text=dict(vocab.lang_token_ids),
        units={lang: first_unit + index for index, lang in enumerate(languages.units)},
        vocoder={lang: index for index, lang in enumerate(languages.vocoder)},
    )


def _table_problems(config: SeamlessM4Tv2Config, preset: CheckpointPreset, vocab: TextVocabulary) -> list[str]:
    maps = language_maps(preset, vocab)
    checks = {
        "id_to_text covers every text id": vocab.vocab_size == config.vocab_size,
        "language tokens are text ids": max(maps.text.values()) < config.vocab_size,
        "character ids fit the character embedding": FIRST_CHAR_ID + len(vocab.char_to_id) <= config.char_vocab_size,
        "t2u language ids fit the t2u vocabulary": max(maps.units.values()) < config.t2u_vocab_size,
        "one vocoder language embedding per language": len(maps.vocoder) == config.vocoder_num_langs,
        "the vocoder has the preset's speakers": preset.num_speakers == config.vocoder_num_spkrs,
        "the vocoder voices the preset's units": preset.unit_count <= config.unit_hifi_gan_vocab_size,
        "special ids": (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.vocoder_offset)
        == (PAD_ID, BOS_ID, EOS_ID, VOCODER_OFFSET),
        "t2u variance predictor width": config.t2u_variance_predictor_embed_dim == config.hidden_size,
    }
    return [rule for rule, holds in checks.items() if not holds]


def build_config(preset: CheckpointPreset, vocab: TextVocabulary) -> SeamlessM4Tv2Config:
    """The preset's config: sized to the tables, or (full tables) the config's own sizes, checked."""
    if preset.full_tables is None:
        config = _fitted_config(preset, vocab)
    else:
        config = SeamlessM4Tv2Config(**preset.config)
    problems = _table_problems(config, preset, vocab)
    if problems:
        raise ValueError(f"preset {preset.name!r} is inconsistent: {'; '.join(problems)}")
    return config


def build_generation_config(
    config: SeamlessM4Tv2Config, preset: CheckpointPreset, vocab: TextVocabulary
) -> GenerationConfig:
    maps = language_maps(preset, vocab)
    generation = GenerationConfig(
        bos_token_id=BOS_ID,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=EOS_ID,
        max_new_tokens=preset.max_new_tokens,
    )
    generation.text_decoder_lang_to_code_id = maps.text
    generation.t2u_lang_code_to_id = maps.units
    generation.vocoder_lang_code_to_id = maps.vocoder
    generation.id_to_text = dict(vocab.id_to_text)
    generation.char_to_id = dict(vocab.char_to_id)
    generation._from_model_config = False
    return generation


def shaping_plan(preset: CheckpointPreset, config: SeamlessM4Tv2Config) -> ShapingPlan:
    voiced = range(config.vocoder_offset, config.vocoder_offset + config.unit_hifi_gan_vocab_size)
    return ShapingPlan(preset.shaping, EOS_ID, voiced)


def _write_in_memory(directory: Path, model_class: type, config: SeamlessM4Tv2Config,
                     generation: GenerationConfig, plan: ShapingPlan, seed: int) -> int:
    """transformers' own initialisation of the whole model in memory (the small presets)."""
    torch.manual_seed(seed)
    model = model_class(config).eval()
    shape_model(model, plan, torch.Generator().manual_seed(seed))
    model.generation_config = generation
    model.save_pretrained(directory)
    return sum(param.numel() for param in model.parameters())


def _write_streamed(directory: Path, model_class: type, config: SeamlessM4Tv2Config,
                    generation: GenerationConfig, plan: ShapingPlan, seed: int) -> int:
    """Tensor by tensor, never holding the model (see seamless_export.random_weights)."""
    weights = write_streamed_weights(directory, model_class, config, plan, seed)
    config.architectures = [model_class.__name__]
    config.dtype = STORED_DTYPE
    config.save_pretrained(directory)
    generation.save_pretrained(directory)
    return weights.num_parameters


def write_random_checkpoint(
    directory: Path, preset: CheckpointPreset, seed: int = 0, layout: str = "full", layers: int | None = None
) -> CheckpointInfo:
    """Write a seeded random checkpoint of ``preset`` into ``directory`` (created if missing).

    ``layers``: that many layers in every stack instead of the preset's, every width and table unchanged.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    if layers is not None:
        preset = with_layers(preset, layers)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = build_vocabulary(preset, seed)
    config = build_config(preset, vocab)
    generation = build_generation_config(config, preset, vocab)
    model_class = SeamlessM4Tv2Model if layout == "full" else SeamlessM4Tv2ForSpeechToSpeech
    write = _write_streamed if preset.streamed else _write_in_memory
    num_parameters = write(directory, model_class, config, generation, shaping_plan(preset, config), seed)
    SeamlessM4TFeatureExtractor(sampling_rate=config.sampling_rate).save_pretrained(directory)
    (directory / SPM_FILE).write_bytes(vocab.spm_model)
    logger.info("wrote %s checkpoint (%d parameters, seed %d) to %s", preset.name, num_parameters, seed, directory)
    return CheckpointInfo(directory, preset.name, seed, layout, num_parameters, layers)
