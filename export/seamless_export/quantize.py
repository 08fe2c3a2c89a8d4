"""fp16 and int8 variants of exported fp32 graphs, made with ONNX Runtime's own tools."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16

from seamless_export.graphs import PROTOBUF_LIMIT_BYTES, save_onnx

logger = logging.getLogger(__name__)

QUANTIZED_PRECISIONS = ("fp16", "int8")
# Only matrix products are quantised. ONNX Runtime's integer convolutions (ConvInteger) are slower than float ones
# on CPU: with Conv included, the small preset's vocoder took 1252 ms instead of 251 ms and the t2u 57 ms
# instead of 30 ms (bench/bench_pipeline.py, 2 cores), while MatMul-only int8 cut a decoder step from 4.6 to 2.2 ms.
INT8_OP_TYPES = ["MatMul", "Gemm"]


def _size(paths: list[Path]) -> int:
    return sum(path.stat().st_size for path in paths if path.exists())


def to_fp16(source: Path, target: Path) -> tuple[Path, ...]:
    """Convert weights and compute to float16, keeping float32 graph inputs and outputs."""
    model = onnx.load(str(source))
    converted = convert_float_to_float16(model, keep_io_types=True)
    half_size = _size([source, source.with_name(source.name + ".data")]) // 2
    return save_onnx(converted, target, half_size)


def to_int8(source: Path, target: Path) -> tuple[Path, ...]:
    """Dynamic QInt8 quantisation of the matrix-product weights (activations quantised at run time)."""
    large = _size([source, source.with_name(source.name + ".data")]) >= PROTOBUF_LIMIT_BYTES
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OP_TYPES,
                     use_external_data_format=large)
    if not large:
        return ()
    return tuple(path for path in target.parent.iterdir() if path.name.startswith(target.name + "."))


def convert(precision: str, source: Path, target: Path) -> tuple[Path, ...]:
    """Write the ``precision`` variant of ``source`` at ``target``; returns its external-data files."""
    if precision == "fp16":
        return to_fp16(source, target)
    if precision == "int8":
        return to_int8(source, target)
    raise ValueError(f"unknown precision {precision!r} (known: {', '.join(QUANTIZED_PRECISIONS)})")
