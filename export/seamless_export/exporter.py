"""The export pipeline: load, export each part under the patches and verify it against PyTorch (keeping
PyTorch's outputs), free the PyTorch model, convert each graph to the precision and verify it against the kept
outputs, copy the VAD, write the manifest. The manifest is written last, only when every graph passed
verification; a non-fp32 bundle then measures itself against the export's fp32 graphs and adds the report to its
manifest."""

from __future__ import annotations

import dataclasses
import gc
import importlib.resources
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime
import torch
import transformers
from seamless_daemon.bundle import PRECISIONS, ROLE_VAD
from transformers import SeamlessM4Tv2ForSpeechToSpeech

from seamless_export.components import PARTS, ModelDims, PartSpec
from seamless_export.graphs import PROTOBUF_LIMIT_BYTES, ExportedGraph, export_part
from seamless_export.manifest import (
    ManifestInputs,
    build_manifest,
    check_generation_settings,
    read_source_files,
    write_bundle_manifest,
)
from seamless_export.patches import export_patches
from seamless_export.precision import graph_precisions
from seamless_export.quality import attach_report
from seamless_export.quantize import convert, converted_session_config
from seamless_export.verify import TOLERANCES, PartCheck, PartReference, reference_outputs, verify_graph

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
VAD_FILE = "vad.onnx"
FILE_MODE = 0o666
VAD_INPUTS = ("input", "state", "sr")
VAD_OUTPUTS = ("output", "stateN")

Progress = Callable[[str], None]
# Token limit of each translation in the precision report: enough for the fixed inputs' sentences, and a bound
# on the time the report takes at the released size (two bundles, 4 inputs x 4 languages).
REPORT_MAX_NEW_TOKENS = 32


class ExportError(Exception):
    """The export cannot proceed (one-line message naming the culprit)."""


@dataclass(frozen=True)
class ExportOptions:
    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    revision: str | None = None
    # Graphs of this many bytes or more keep their weights in one <name>.onnx.data file. Protobuf caps a file at
    # 2 GB; a lower value exercises the same path on a smaller model.
    external_data_bytes: int = PROTOBUF_LIMIT_BYTES


@dataclass(frozen=True)
class PartReport:
    role: str
    export_seconds: float
    verify_seconds: float
    size_bytes: int


@dataclass(frozen=True)
class ExportResult:
    bundle: Path
    parts: tuple[PartReport, ...]
    size_bytes: int


def load_model(model: str, revision: str | None) -> SeamlessM4Tv2ForSpeechToSpeech:
    """Load a folder or hub id the way users do; accepts the full-model and speech-to-speech layouts."""
    try:
        loaded = SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(model, revision=revision)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{model}: cannot load model: {first_line}") from None
    return loaded.eval()


def _prepare_output(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{path}: output exists and is not an empty folder")
    path.mkdir(parents=True, exist_ok=True)


def _copy_vad(bundle: Path) -> ExportedGraph:
    source = importlib.resources.files("silero_vad") / "data" / "silero_vad.onnx"
    target = bundle / VAD_FILE
    with importlib.resources.as_file(source) as path:
        shutil.copyfile(path, target)
    return ExportedGraph(ROLE_VAD, target, (), VAD_INPUTS, VAD_OUTPUTS, 0.0)


def _readable_files(bundle: Path) -> None:
    """Give every file the mode a plain file gets here (onnx writes external data files as 0600, which the
    daemon's own system user could not read in a bundle installed by root)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in bundle.iterdir():
        if path.is_file():
            path.chmod(FILE_MODE & ~umask)


def _size(graph: ExportedGraph) -> int:
    return sum(path.stat().st_size for path in (graph.path, *graph.external_data))


@dataclass(frozen=True)
class _Part:
    """One part through the export: its graph, PyTorch's reference outputs and the latest verification."""

    graph: ExportedGraph
    reference: PartReference
    check: PartCheck
    verify_seconds: float


def _export_fp32(spec: PartSpec, model: torch.nn.Module, dims: ModelDims, options: ExportOptions,
                 target_dir: Path) -> _Part:
    with export_patches(options.opset):
        graph = export_part(spec, model, dims, options.opset, target_dir, options.external_data_bytes)
    start = time.perf_counter()
    reference = reference_outputs(spec, model, dims)
    check = verify_graph(reference, graph.path, TOLERANCES["fp32"])
    return _Part(graph, reference, check, time.perf_counter() - start)


def _convert(part: _Part, precision: str, bundle: Path) -> _Part:
    """The ``precision`` variant of an fp32 graph, verified against the PyTorch outputs kept from the export."""
    start = time.perf_counter()
    role = part.graph.role
    target = bundle / part.graph.path.name
    external = convert(precision, part.graph.path, target, role)
    graph = dataclasses.replace(part.graph, path=target, external_data=external,
                                precision=graph_precisions(precision, (role,))[role],
                                session_config=converted_session_config(precision, part.graph.session_config))
    check = verify_graph(part.reference, graph.path, TOLERANCES[precision])
    return _Part(graph, part.reference, check, time.perf_counter() - start)


def _export_all(model: torch.nn.Module, dims: ModelDims, options: ExportOptions, target_dir: Path,
                progress: Progress) -> list[_Part]:
    parts = []
    for spec in PARTS:
        part = _export_fp32(spec, model, dims, options, target_dir)
        progress(f"{spec.role}: exported in {part.graph.seconds:.1f} s, verified in {part.verify_seconds:.1f} s, "
                 f"{_size(part.graph) / 1e6:.1f} MB")
        parts.append(part)
    return parts


def _convert_all(parts: list[_Part], precision: str, bundle: Path, progress: Progress) -> list[_Part]:
    converted = []
    for part in parts:
        done = _convert(part, precision, bundle)
        progress(f"{done.graph.role}: {done.graph.precision}, converted and verified in {done.verify_seconds:.1f} s,"
                 f" {_size(done.graph) / 1e6:.1f} MB")
        converted.append(done)
    return converted


def _versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def export_bundle(
    model_ref: str, output: Path, options: ExportOptions = ExportOptions(), progress: Progress = logger.info
) -> ExportResult:
    """Export ``model_ref`` (folder or hub id) into the bundle folder ``output``."""
    if options.precision not in PRECISIONS:
        raise ExportError(f"unknown precision {options.precision!r} (known: {', '.join(PRECISIONS)})")
    output = Path(output)
    model = load_model(model_ref, options.revision)
    check_generation_settings(model.generation_config, model_ref)
    source = read_source_files(model_ref, options.revision)
    dims = ModelDims.from_config(model.config)
    config, generation = model.config, model.generation_config
    num_parameters = sum(p.numel() for p in model.parameters())
    _prepare_output(output)
    with tempfile.TemporaryDirectory(prefix="fp32-graphs-") as work:
        parts = _export_all(model, dims, options, output if options.precision == "fp32" else Path(work), progress)
        del model  # conversion and the precision report need no PyTorch model: free its memory first
        gc.collect()
        if options.precision != "fp32":
            parts = _convert_all(parts, options.precision, output, progress)
        graphs = [part.graph for part in parts] + [_copy_vad(output)]
        _readable_files(output)
        extra = {
            "versions": _versions(),
            "verification": {part.graph.role: part.check.as_record() for part in parts},
            "export_seconds": {part.graph.role: round(part.graph.seconds, 2) for part in parts},
            "num_parameters": num_parameters,
        }
        revision = options.revision or getattr(config, "_commit_hash", None)
        inputs = ManifestInputs(model_ref, revision, options.precision, options.opset, tuple(graphs), extra)
        write_bundle_manifest(output, build_manifest(output, inputs, config, generation, source))
        if options.precision != "fp32":
            progress(f"measuring the {options.precision} bundle against fp32 on the fixed inputs")
            attach_report(Path(work), output, max_new_tokens=REPORT_MAX_NEW_TOKENS)
    reports = tuple(PartReport(part.graph.role, part.graph.seconds, part.verify_seconds, _size(part.graph))
                    for part in parts)
    size = sum(path.stat().st_size for path in output.iterdir() if path.is_file())
    progress(f"bundle written to {output} ({size / 1e6:.1f} MB, {options.precision})")
    return ExportResult(output, reports, size)
