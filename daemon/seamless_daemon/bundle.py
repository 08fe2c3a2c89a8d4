"""Model bundle: manifest schema, writer helpers and validating loader.

This module is the only contract between the export stage and the daemon. A bundle is a folder holding
ONNX graphs (plus any external-data files) and ``manifest.json``. See docs/bundle-format.md.

Loading checks, each failing with a one-line :class:`BundleError` naming the file:
unknown format version, missing file, checksum mismatch, a path (graph or ONNX external data) that
escapes the bundle folder. Graph inputs/outputs are checked against the manifest when the runtime opens
each session (``seamless_daemon.runtime.sessions``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
HASH_CHUNK_BYTES = 1 << 20

# Graph roles, in pipeline order. ``vad`` is used by streaming mode.
ROLE_SPEECH_ENCODER = "speech_encoder"
ROLE_DECODER_CROSS = "text_decoder_cross"  # cross-attention keys/values of every layer, once per utterance
ROLE_DECODER = "text_decoder"  # every decoder step, the first included, and the full pass that feeds t2u
ROLE_T2U = "t2u"
ROLE_VOCODER = "vocoder"
ROLE_VAD = "vad"
REQUIRED_ROLES = (ROLE_SPEECH_ENCODER, ROLE_DECODER_CROSS, ROLE_DECODER, ROLE_T2U, ROLE_VOCODER, ROLE_VAD)
PRECISIONS = ("fp32", "fp16", "int8")
CACHE_PARTS = ("key", "value")

# Graph input and output names shared by the export stage and the runtime (docs/bundle-format.md).
INPUT_FEATURES = "input_features"
ATTENTION_MASK = "attention_mask"
INPUT_IDS = "input_ids"
ENCODER_HIDDEN_STATES = "encoder_hidden_states"
ENCODER_ATTENTION_MASK = "encoder_attention_mask"
LOGITS = "logits"
LAST_HIDDEN_STATE = "last_hidden_state"
INPUTS_EMBEDS = "inputs_embeds"
CHAR_INPUT_IDS = "char_input_ids"
CHAR_COUNT_PER_ID = "char_count_per_id"
UNIT_IDS = "unit_ids"
UNIT_MASK = "unit_mask"
SPEAKER_ID = "speaker_id"
LANG_ID = "lang_id"
WAVEFORM = "waveform"
WAVEFORM_LENGTHS = "waveform_lengths"


def self_cache_names(prefix: str, num_layers: int) -> list[str]:
    """``{prefix}.{i}.self.key`` / ``.value`` of every decoder layer (prefix ``past`` or ``present``)."""
    return [f"{prefix}.{layer}.self.{part}" for layer in range(num_layers) for part in CACHE_PARTS]


def cross_cache_names(num_layers: int) -> list[str]:
    """``cross.{i}.key`` / ``.value``: outputs of the cross graph, inputs of the decoder graph."""
    return [f"cross.{layer}.{part}" for layer in range(num_layers) for part in CACHE_PARTS]


class BundleError(Exception):
    """A bundle that cannot be used. The message is one line and names the offending file."""


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the bundle."""

    path: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    external_data: tuple[str, ...] = ()
    precision: str = "fp32"  # the precision of this graph's weights (a recipe keeps some graphs in fp32)
    # ONNX Runtime session config entries this graph needs (e.g. no weight pre-packing where two nodes share one
    # initializer, which pre-packing would copy).
    session_config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    unk: int
    bos: int
    eos: int
    decoder_start: int
    t2u_pad: int
    t2u_eos: int
    vocoder_offset: int


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the fbank front end (from preprocessor_config.json)."""

    sampling_rate: int
    num_mel_bins: int
    stride: int
    padding_value: float


@dataclass(frozen=True)
class Languages:
    text: Mapping[str, int]
    t2u: Mapping[str, int]
    vocoder: Mapping[str, int]

    @property
    def speech_targets(self) -> list[str]:
        """Languages the bundle can speak: those present in all three tables."""
        return sorted(set(self.text) & set(self.t2u) & set(self.vocoder))


@dataclass(frozen=True)
class DecoderSpec:
    num_layers: int
    num_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int


@dataclass(frozen=True)
class Manifest:
    format_version: int
    source_model: str
    source_revision: str | None
    precision: str
    opset: int
    input_sample_rate: int
    output_sample_rate: int
    graphs: Mapping[str, GraphSpec]
    files: Mapping[str, str]  # relative path -> sha256 (every file of the bundle but the manifest)
    special_ids: SpecialIds
    features: FeatureSpec
    decoder: DecoderSpec
    languages: Languages
    num_speakers: int
    max_new_tokens: int | None
    max_length: int | None
    id_to_text: Mapping[str, str]
    char_to_id: Mapping[str, int]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False, sort_keys=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _confined(root: Path, rel: str, what: str) -> Path:
    """Resolve ``rel`` inside ``root``; refuse absolute paths and anything escaping the folder."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or rel == "":
        raise BundleError(f"{what}: path {rel!r} is outside the bundle {root}")
    resolved = (root / rel).resolve()
    if root.resolve() not in resolved.parents:
        raise BundleError(f"{what}: path {rel!r} resolves outside the bundle {root}")
    return resolved


def _require(data: Mapping[str, Any], key: str, manifest_path: Path) -> Any:
    if key not in data:
        raise BundleError(f"{manifest_path}: missing key {key!r}")
    return data[key]


def _parse(data: Mapping[str, Any], manifest_path: Path) -> Manifest:
    version = _require(data, "format_version", manifest_path)
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: unknown bundle format version {version!r} (this daemon reads {FORMAT_VERSION})"
        )
    try:
        graphs = {
            role: GraphSpec(
                path=spec["path"],
                inputs=tuple(spec["inputs"]),
                outputs=tuple(spec["outputs"]),
                external_data=tuple(spec.get("external_data", ())),
                precision=spec.get("precision", data["precision"]),
                session_config={str(k): str(v) for k, v in spec.get("session_config", {}).items()},
            )
            for role, spec in data["graphs"].items()
        }
        languages = data["languages"]
        manifest = Manifest(
            format_version=version,
            source_model=data["source_model"],
            source_revision=data.get("source_revision"),
            precision=data["precision"],
            opset=int(data["opset"]),
            input_sample_rate=int(data["input_sample_rate"]),
            output_sample_rate=int(data["output_sample_rate"]),
            graphs=graphs,
            files=dict(data["files"]),
            special_ids=SpecialIds(**data["special_ids"]),
            features=FeatureSpec(**data["features"]),
            decoder=DecoderSpec(**data["decoder"]),
            languages=Languages(
                text=dict(languages["text"]), t2u=dict(languages["t2u"]), vocoder=dict(languages["vocoder"])
            ),
            num_speakers=int(data["num_speakers"]),
            max_new_tokens=data.get("max_new_tokens"),
            max_length=data.get("max_length"),
            id_to_text=dict(data["id_to_text"]),
            char_to_id=dict(data["char_to_id"]),
            extra=dict(data.get("extra", {})),
        )
    except KeyError as err:
        raise BundleError(f"{manifest_path}: missing key {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise BundleError(f"{manifest_path}: malformed manifest: {err}") from None
    missing = [role for role in REQUIRED_ROLES if role not in manifest.graphs]
    if missing:
        raise BundleError(f"{manifest_path}: graphs missing for {', '.join(missing)}")
    if manifest.precision not in PRECISIONS:
        raise BundleError(f"{manifest_path}: unknown precision {manifest.precision!r}")
    return manifest


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle: its folder and manifest."""

    root: Path
    manifest: Manifest

    def graph_path(self, role: str) -> Path:
        return _confined(self.root, self.manifest.graphs[role].path, role)


def _check_external_data(root: Path, graph_file: Path, rel: str) -> None:
    """Read the graph's initializers (without their data) and confine every external-data location."""
    import onnx

    model = onnx.load(str(graph_file), load_external_data=False)
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        for entry in tensor.external_data:
            if entry.key == "location":
                location = str(PurePosixPath(rel).parent / entry.value)
                _confined(root, location, f"{rel} external data")


def _verify_checksums(root: Path, expected: Mapping[str, str], paths: Mapping[str, Path]) -> None:
    """Hash every file, largest first, on as many threads as there are cores (hashlib releases the GIL: a
    released-size bundle's 7 GB took 13.4 s on one core)."""
    ordered = sorted(paths, key=lambda rel: paths[rel].stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        digests = dict(zip(ordered, pool.map(lambda rel: sha256_file(paths[rel]), ordered)))
    for rel in ordered:
        if digests[rel] != expected[rel]:
            raise BundleError(
                f"{root / rel}: checksum mismatch (manifest {expected[rel][:12]}…, file {digests[rel][:12]}…)")


def load_bundle(path: str | Path, verify_checksums: bool = True) -> Bundle:
    """Load and validate the bundle in folder ``path``."""
    root = Path(path)
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"{root}: bundle folder does not exist")
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: manifest missing")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{manifest_path}: unreadable manifest: {err}") from None
    if not isinstance(data, dict):
        raise BundleError(f"{manifest_path}: manifest is not a JSON object")
    manifest = _parse(data, manifest_path)

    for role, spec in manifest.graphs.items():
        listed = [spec.path, *spec.external_data]
        for rel in listed:
            _confined(root, rel, role)
            if rel not in manifest.files:
                raise BundleError(f"{root / rel}: not listed in the manifest's files")
    paths = {rel: _confined(root, rel, "files") for rel in manifest.files}
    for rel, file_path in paths.items():
        if not file_path.is_file():
            raise BundleError(f"{root / rel}: bundle file missing")
    if verify_checksums:
        _verify_checksums(root, manifest.files, paths)
    for spec in manifest.graphs.values():
        _check_external_data(root, root / spec.path, spec.path)
    bundle = Bundle(root=root, manifest=manifest)
    logger.info("loaded bundle %s (%s, %s)", root, manifest.source_model, manifest.precision)
    return bundle


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` into ``root`` (used by the export stage)."""
    path = root / MANIFEST_NAME
    path.write_text(manifest.to_json() + "\n", encoding="utf-8")
    return path
