"""Bundle manifest from the source checkpoint's own files and the written graphs."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seamless_daemon.bundle import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    DecoderSpec,
    FeatureSpec,
    GraphSpec,
    Languages,
    Manifest,
    SpecialIds,
    sha256_file,
    write_manifest,
)
from transformers import GenerationConfig
from transformers.utils import cached_file

from seamless_export.components import ModelDims
from seamless_export.graphs import ExportedGraph

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DEFAULT_UNK_ID = 1  # transformers' character-count rules treat id 1 as unk unless told otherwise
CONFIG_FILE = "config.json"
GENERATION_FILE = "generation_config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
PREPROCESSOR_KEYS = ("sampling_rate", "num_mel_bins", "stride", "padding_value")
LANGUAGE_MAPS = {
    "text": "text_decoder_lang_to_code_id",
    "t2u": "t2u_lang_code_to_id",
    "vocoder": "vocoder_lang_code_to_id",
}

# Generation settings whose effect the daemon's greedy decoder does not reproduce, with their neutral values.
NEUTRAL_GENERATION_SETTINGS: dict[str, tuple[Any, ...]] = {
    "num_beams": (None, 1),
    "do_sample": (None, False),
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "bad_words_ids": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,),
    "num_return_sequences": (None, 1),
}


class ManifestError(Exception):
    """The checkpoint cannot be described by a bundle manifest (one-line message)."""


@dataclass(frozen=True)
class SourceFiles:
    """The JSON files of the source checkpoint, read as stored (not through transformers' defaults)."""

    generation: Mapping[str, Any]
    preprocessor: Mapping[str, Any]


def _read_json(model: str, name: str, revision: str | None) -> dict[str, Any]:
    path = cached_file(model, name, revision=revision)
    if path is None:
        raise ManifestError(f"{model}: {name} not found")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f"{path}: unreadable: {err}") from None


def read_source_files(model: str, revision: str | None) -> SourceFiles:
    generation = _read_json(model, GENERATION_FILE, revision)
    for key in (*LANGUAGE_MAPS.values(), "id_to_text", "char_to_id"):
        if not generation.get(key):
            raise ManifestError(f"{model}/{GENERATION_FILE}: missing key {key!r}")
    preprocessor = _read_json(model, PREPROCESSOR_FILE, revision)
    for key in PREPROCESSOR_KEYS:
        if key not in preprocessor:
            raise ManifestError(f"{model}/{PREPROCESSOR_FILE}: missing key {key!r}")
    return SourceFiles(generation=generation, preprocessor=preprocessor)


def check_generation_settings(generation: GenerationConfig, where: str) -> None:
    """Refuse settings that make generate() differ from plain greedy decoding."""
    for key, neutral in NEUTRAL_GENERATION_SETTINGS.items():
        value = getattr(generation, key, None)
        if value not in neutral:
            raise ManifestError(
                f"{where}/{GENERATION_FILE}: {key}={value!r} is not reproduced by the daemon's greedy decoder"
            )


def _special_ids(config: Any, generation: Mapping[str, Any]) -> SpecialIds:
    return SpecialIds(
        pad=config.pad_token_id,
        unk=generation.get("unk_token_id", DEFAULT_UNK_ID),
        bos=config.bos_token_id,
        eos=config.eos_token_id,
        decoder_start=config.decoder_start_token_id,
        t2u_pad=config.t2u_pad_token_id,
        t2u_eos=config.t2u_eos_token_id,
        vocoder_offset=config.vocoder_offset,
    )


@dataclass(frozen=True)
class ManifestInputs:
    source_model: str
    source_revision: str | None
    precision: str
    opset: int
    graphs: tuple[ExportedGraph, ...]
    extra: Mapping[str, Any]


def build_manifest(
    root: Path, inputs: ManifestInputs, config: Any, generation: GenerationConfig, source: SourceFiles
) -> Manifest:
    """Describe the bundle in ``root``: every file there is hashed and listed."""
    dims = ModelDims.from_config(config)
    graphs = {
        g.role: GraphSpec(
            path=g.path.name,
            inputs=g.inputs,
            outputs=g.outputs,
            external_data=tuple(path.name for path in g.external_data),
            precision=g.precision,
            session_config=dict(g.session_config),
        )
        for g in inputs.graphs
    }
    files = {
        path.name: sha256_file(path) for path in sorted(root.iterdir()) if path.is_file() and path.name != MANIFEST_NAME
    }
    pre = source.preprocessor
    return Manifest(
        format_version=FORMAT_VERSION,
        source_model=inputs.source_model,
        source_revision=inputs.source_revision,
        precision=inputs.precision,
        opset=inputs.opset,
        input_sample_rate=SAMPLE_RATE,
        output_sample_rate=SAMPLE_RATE,
        graphs=graphs,
        files=files,
        special_ids=_special_ids(config, source.generation),
        features=FeatureSpec(
            sampling_rate=int(pre["sampling_rate"]),
            num_mel_bins=int(pre["num_mel_bins"]),
            stride=int(pre["stride"]),
            padding_value=float(pre["padding_value"]),
        ),
        decoder=DecoderSpec(
            num_layers=dims.num_layers,
            num_heads=dims.num_heads,
            head_dim=dims.head_dim,
            hidden_size=dims.hidden_size,
            vocab_size=dims.vocab_size,
        ),
        languages=Languages(**{kind: dict(source.generation[key]) for kind, key in LANGUAGE_MAPS.items()}),
        num_speakers=config.vocoder_num_spkrs,
        max_new_tokens=generation.max_new_tokens,
        max_length=generation.max_length,
        id_to_text=dict(source.generation["id_to_text"]),
        char_to_id=dict(source.generation["char_to_id"]),
        extra=dict(inputs.extra),
    )


def write_bundle_manifest(root: Path, manifest: Manifest) -> Path:
    path = write_manifest(root, manifest)
    logger.info("wrote %s", path)
    return path
