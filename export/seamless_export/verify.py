"""Parity check of exported graphs: ONNX Runtime against the unpatched PyTorch model.

Every graph runs on random inputs of each of its part's verification shapes — shapes it was not exported
with — and each output is compared with the PyTorch wrapper. A float output passes when its max
absolute difference is within ``abs + rel * max|reference|``; an integer output must match exactly when the
tolerance demands it. Failures raise :class:`ParityError` naming the part, the output and the figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from seamless_export.components import ModelDims, PartSpec

logger = logging.getLogger(__name__)

VERIFY_SEED = 4321


class ParityError(Exception):
    """An exported graph disagrees with PyTorch beyond its tolerance (one-line message)."""


@dataclass(frozen=True)
class Tolerance:
    """Named acceptance rule for one precision.

    ``exact`` demands identical integer outputs and identical shapes; without it (fp16, int8, whose rounded
    durations can change the number of frames) integer agreement and shape changes are recorded, not enforced.
    """

    name: str
    abs: float
    rel: float
    exact: bool


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance("fp32", abs=1e-4, rel=1e-4, exact=True),
    "fp16": Tolerance("fp16", abs=1e-2, rel=5e-2, exact=False),
    "int8": Tolerance("int8", abs=5e-2, rel=1.0, exact=False),
}


@dataclass(frozen=True)
class OutputCheck:
    output: str
    max_abs_diff: float | None  # None when the shapes differ
    limit: float
    agreement: float | None  # share of equal elements, integer outputs only

    def as_record(self) -> dict[str, float | None]:
        return {"max_abs_diff": self.max_abs_diff, "limit": self.limit, "agreement": self.agreement}


@dataclass(frozen=True)
class PartCheck:
    role: str
    tolerance: str
    outputs: tuple[OutputCheck, ...]

    def as_record(self) -> dict[str, object]:
        return {"tolerance": self.tolerance, "outputs": {o.output: o.as_record() for o in self.outputs}}


def _compare(role: str, name: str, got: np.ndarray, want: np.ndarray, tolerance: Tolerance) -> OutputCheck:
    is_integer = np.issubdtype(want.dtype, np.integer)
    limit = 0.0 if is_integer else tolerance.abs + tolerance.rel * float(np.abs(want).max(initial=0.0))
    if got.shape != want.shape:
        if tolerance.exact:
            raise ParityError(f"{role}: output {name} has shape {got.shape}, PyTorch gives {want.shape}")
        return OutputCheck(name, None, limit, None)
    diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
    agreement = float((got == want).mean()) if is_integer and want.size else None
    if (is_integer and tolerance.exact or not is_integer) and diff > limit:
        raise ParityError(
            f"{role}: output {name} max abs diff {diff:.3g} exceeds the {tolerance.name} tolerance {limit:.3g}"
        )
    return OutputCheck(name, diff, limit, agreement)


@dataclass(frozen=True)
class ShapeReference:
    """PyTorch's outputs for one verification shape's inputs."""

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class PartReference:
    """Everything needed to verify a part's graph once the PyTorch model is gone."""

    spec: PartSpec
    output_names: tuple[str, ...]
    shapes: tuple[ShapeReference, ...]


def reference_outputs(spec: PartSpec, model: torch.nn.Module, dims: ModelDims) -> PartReference:
    """Run the unpatched wrapper in PyTorch on every verification shape's seeded random inputs."""
    names = spec.input_names(dims)
    output_names = tuple(spec.output_names(dims))
    shapes = []
    for shape in spec.verify_shapes:
        inputs = spec.make_inputs(dims, shape, torch.Generator().manual_seed(VERIFY_SEED))
        with torch.no_grad():
            want = spec.build(model).eval()(*(inputs[name] for name in names))
        shapes.append(ShapeReference({name: inputs[name].numpy() for name in names},
                                     {name: w.numpy() for name, w in zip(output_names, want)}))
    return PartReference(spec, output_names, tuple(shapes))


def _worst(checks: list[OutputCheck]) -> tuple[OutputCheck, ...]:
    """Per output, the check with the largest difference over every verification shape."""
    worst: dict[str, OutputCheck] = {}
    for check in checks:
        kept = worst.get(check.output)
        if kept is None or (check.max_abs_diff or 0.0) > (kept.max_abs_diff or 0.0):
            worst[check.output] = check
    return tuple(worst.values())


def verify_graph(reference: PartReference, graph: Path, tolerance: Tolerance) -> PartCheck:
    """Run ``graph`` in ONNX Runtime on every verification shape's inputs and compare with PyTorch's outputs."""
    spec = reference.spec
    options = onnxruntime.SessionOptions()
    for key, value in spec.session_config.items():
        options.add_session_config_entry(key, value)
    session = onnxruntime.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])
    checks: list[OutputCheck] = []
    for shape in reference.shapes:
        got = session.run(list(reference.output_names), shape.inputs)
        checks += [_compare(spec.role, name, g, shape.outputs[name], tolerance)
                   for name, g in zip(reference.output_names, got)]
    worst = max((c.max_abs_diff for c in checks if c.max_abs_diff is not None), default=0.0)
    logger.info("%s verified (%s, %d shapes): max abs diff %.3g", spec.role, tolerance.name, len(reference.shapes),
                worst)
    return PartCheck(spec.role, tolerance.name, _worst(checks))
