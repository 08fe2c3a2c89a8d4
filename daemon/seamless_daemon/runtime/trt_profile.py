"""TensorRT optimisation profiles: min/opt/max shapes of a graph's dynamic inputs.

Without explicit profiles ONNX Runtime's TensorRT provider builds an engine for the first shapes it sees and
rebuilds it whenever an input grows (every decoding step would do so). So every graph gets one explicit
profile, derived from its ONNX inputs: each dynamic dimension is named in the export (``B`` batch, ``T`` stacked
fbank frames, ``S`` encoder frames, ``L`` text tokens, ``P`` cached text tokens, ``C`` characters, ``U`` units)
and takes its range from :data:`DEFAULT_DIMS`, overridden per name by the config's ``profile``. A graph with a
dynamic dimension that has no name or no range gets no explicit profile (ONNX Runtime then profiles from the
shapes it sees), with a log line naming the dimension.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from seamless_daemon.provider_spec import DimRange

logger = logging.getLogger(__name__)

FRAMES_PER_SECOND = 50  # stacked fbank frames: 10 ms hop, stride 2
TYPICAL_AUDIO_S = 5
MAX_AUDIO_S = 30  # recording.max_seconds' default; longer audio fails on a TensorRT engine built with these
TYPICAL_TOKENS = 32
MAX_TOKENS = 512
CHARS_PER_TOKEN = 8
UNITS_PER_TOKEN = 16
ADAPTOR_STRIDE = 8  # SeamlessM4T v2's speech encoder adaptor: encoder frames = fbank frames / 8
DEFAULT_DIMS: Mapping[str, DimRange] = {
    "B": DimRange(1, 1, 1),
    "T": DimRange(1, TYPICAL_AUDIO_S * FRAMES_PER_SECOND, MAX_AUDIO_S * FRAMES_PER_SECOND),
    "S": DimRange(1, TYPICAL_AUDIO_S * FRAMES_PER_SECOND // ADAPTOR_STRIDE, MAX_AUDIO_S * FRAMES_PER_SECOND),
    "L": DimRange(1, TYPICAL_TOKENS, MAX_TOKENS),
    "P": DimRange(0, TYPICAL_TOKENS, MAX_TOKENS),  # the first decoding step has an empty past
    "C": DimRange(1, TYPICAL_TOKENS * CHARS_PER_TOKEN, MAX_TOKENS * CHARS_PER_TOKEN),
    "U": DimRange(1, TYPICAL_TOKENS * UNITS_PER_TOKEN, MAX_TOKENS * UNITS_PER_TOKEN),
}
Dim = int | str | None  # a fixed size, a named dynamic dimension, or an unnamed dynamic one


@dataclass(frozen=True)
class GraphInput:
    name: str
    dims: tuple[Dim, ...]

    @property
    def dynamic(self) -> bool:
        return any(not isinstance(dim, int) for dim in self.dims)


@dataclass(frozen=True)
class ShapeProfile:
    """ONNX Runtime's ``trt_profile_{min,opt,max}_shapes`` strings, e.g. ``input_ids:1x1,past:1x16x1x64``."""

    min_shapes: str
    opt_shapes: str
    max_shapes: str


def read_graph_inputs(path: Path) -> tuple[GraphInput, ...]:
    """The graph's inputs and their dimensions, read without the weights."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = tuple(_dim(dim) for dim in value.type.tensor_type.shape.dim)
        inputs.append(GraphInput(value.name, dims))
    return tuple(inputs)


def _dim(dim: object) -> Dim:
    if dim.HasField("dim_value"):
        return int(dim.dim_value)
    if dim.HasField("dim_param") and dim.dim_param:
        return str(dim.dim_param)
    return None


def dim_ranges(overrides: Mapping[str, DimRange]) -> dict[str, DimRange]:
    return {**DEFAULT_DIMS, **overrides}


def _shape(item: GraphInput, ranges: Mapping[str, DimRange], pick: str) -> str:
    sizes = [dim if isinstance(dim, int) else getattr(ranges[dim], pick) for dim in item.dims]
    return f"{item.name}:" + "x".join(str(size) for size in sizes)


def shape_profile(graph: str, inputs: Sequence[GraphInput], ranges: Mapping[str, DimRange]) -> ShapeProfile | None:
    """The explicit profile of ``graph``'s dynamic inputs, or None when a dynamic dimension has no range."""
    dynamic = [item for item in inputs if item.dynamic]
    if not dynamic:
        return None
    for item in dynamic:
        unknown = [dim for dim in item.dims if not isinstance(dim, int) and dim not in ranges]
        if unknown:
            what = "an unnamed dimension" if unknown[0] is None else f"dimension {unknown[0]!r}"
            logger.info("TensorRT: %s input %s has %s without a profile range; ONNX Runtime profiles it from the "
                        "shapes it sees", graph, item.name, what)
            return None
    return ShapeProfile(
        min_shapes=",".join(_shape(item, ranges, "min") for item in dynamic),
        opt_shapes=",".join(_shape(item, ranges, "opt") for item in dynamic),
        max_shapes=",".join(_shape(item, ranges, "max") for item in dynamic),
    )
