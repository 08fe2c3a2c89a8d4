"""Export of one part to an ONNX file, with external data in one ``<name>.onnx.data`` file above 2 GB."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch

from seamless_export.components import EXPORT_SHAPE, ModelDims, PartSpec

logger = logging.getLogger(__name__)

PROTOBUF_LIMIT_BYTES = 2 * 1024**3
EXTERNAL_SIZE_THRESHOLD_BYTES = 1024
EXPORT_SEED = 1234


@dataclass(frozen=True)
class ExportedGraph:
    role: str
    path: Path  # the .onnx file
    external_data: tuple[Path, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    seconds: float
    precision: str = "fp32"
    session_config: Mapping[str, str] = field(default_factory=dict)


def save_onnx(model: onnx.ModelProto, path: Path, weight_bytes: int) -> tuple[Path, ...]:
    """Save ``model`` at ``path``; above the protobuf limit, all weights go to one ``<name>.data`` file."""
    if weight_bytes < PROTOBUF_LIMIT_BYTES:
        onnx.save_model(model, str(path))
        return ()
    data = path.with_name(path.name + ".data")
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=EXTERNAL_SIZE_THRESHOLD_BYTES,
    )
    return (data,)


def export_part(spec: PartSpec, model: torch.nn.Module, dims: ModelDims, opset: int, out_dir: Path,
                external_data_bytes: int = PROTOBUF_LIMIT_BYTES) -> ExportedGraph:
    """Trace ``spec``'s wrapper around ``model`` into ``out_dir/<role>.onnx`` (patches must be active); a graph of
    ``external_data_bytes`` or more keeps its weights in one ``<role>.onnx.data`` file."""
    start = time.perf_counter()
    wrapper = spec.build(model).eval()
    inputs = spec.make_inputs(dims, EXPORT_SHAPE, torch.Generator().manual_seed(EXPORT_SEED))
    input_names = spec.input_names(dims)
    output_names = spec.output_names(dims)
    target = out_dir / f"{spec.role}.onnx"
    with tempfile.TemporaryDirectory(prefix=f"{spec.role}-", dir=out_dir) as scratch:
        scratch_file = Path(scratch) / target.name
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                tuple(inputs[name] for name in input_names),
                str(scratch_file),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=spec.dynamic_axes(dims),
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
        wrapper.eval()  # the exporter can leave a module in training mode
        written = list(Path(scratch).iterdir())
        if len(written) == 1 and scratch_file.stat().st_size < external_data_bytes:
            shutil.move(str(scratch_file), target)
            external: tuple[Path, ...] = ()
        else:
            # Above 2 GB the exporter writes one file per weight: gather them into one <name>.onnx.data.
            external = save_onnx(onnx.load(str(scratch_file)), target, PROTOBUF_LIMIT_BYTES)
    seconds = time.perf_counter() - start
    return ExportedGraph(spec.role, target, external, tuple(input_names), tuple(output_names), seconds,
                         session_config=dict(spec.session_config))
