"""ONNX Runtime sessions for the bundle's graphs.

Sessions are built with explicit :class:`onnxruntime.SessionOptions` from :class:`RuntimeOptions`. Requested
execution providers that this ONNX Runtime build does not offer are dropped with a warning; the CPU provider is
always appended as the last fallback. Every session's input and output names are checked against the manifest.
An ONNX Runtime session may be run from several threads at once, so one set of sessions serves every utterance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from seamless_daemon.bundle import Bundle, BundleError, GraphSpec

logger = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
DEFAULT_INTER_OP_THREADS = 1
SPINNING_KEY = "session.intra_op.allow_spinning"
ORT_LOG_ERRORS_ONLY = 3  # ORT severity: 0 verbose .. 4 fatal; its load-time warnings are noise here
GRAPH_OPTIMIZATION_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
# ONNX Runtime reports these when a graph file is unusable; they do not share a base class beyond Exception.
_ORT_LOAD_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("Fail", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "RuntimeException", "InvalidArgument",
                 "NotImplemented")
)
_ONNX_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class RuntimeOptions:
    """How sessions are built. Thread counts of 0 leave the choice to ONNX Runtime."""

    providers: tuple[str, ...] = (CPU_PROVIDER,)
    intra_op_threads: int = 0
    inter_op_threads: int = DEFAULT_INTER_OP_THREADS
    graph_optimization: str = "all"
    # ONNX Runtime's worker threads spin after each run by default. The pipeline runs five sessions one after
    # another, so a finished session's spinning threads steal the cores the next one needs: off by default
    # (measured on the small preset, 2 cores: 743 ms → 601 ms end to end).
    allow_spinning: bool = False

    def __post_init__(self) -> None:
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise ValueError(
                f"graph_optimization: unknown level {self.graph_optimization!r} "
                f"(choose from {', '.join(GRAPH_OPTIMIZATION_LEVELS)})"
            )
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ValueError(
                f"thread counts must be >= 0, got intra {self.intra_op_threads}, inter {self.inter_op_threads}"
            )
        if not self.providers:
            raise ValueError("providers: give at least one execution provider")


@dataclass(frozen=True)
class ProviderChoice:
    """Providers handed to ONNX Runtime, and the requested ones it does not offer."""

    providers: tuple[str, ...]
    dropped: tuple[str, ...] = field(default_factory=tuple)


def choose_providers(requested: Sequence[str], available: Sequence[str] | None = None) -> ProviderChoice:
    """Keep the requested providers this build offers, in order, with the CPU provider last."""
    offered = list(ort.get_available_providers() if available is None else available)
    kept: list[str] = []
    dropped: list[str] = []
    for name in requested:
        if name in kept:
            continue
        (kept if name in offered else dropped).append(name)
    for name in dropped:
        logger.warning("execution provider %s is not available in this ONNX Runtime build; skipping it", name)
    if CPU_PROVIDER in kept:
        kept.remove(CPU_PROVIDER)
    kept.append(CPU_PROVIDER)
    return ProviderChoice(providers=tuple(kept), dropped=tuple(dropped))


def session_options(options: RuntimeOptions) -> ort.SessionOptions:
    built = ort.SessionOptions()
    built.intra_op_num_threads = options.intra_op_threads
    built.inter_op_num_threads = options.inter_op_threads
    built.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if options.inter_op_threads > 1 else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    built.graph_optimization_level = GRAPH_OPTIMIZATION_LEVELS[options.graph_optimization]
    built.log_severity_level = ORT_LOG_ERRORS_ONLY
    built.add_session_config_entry(SPINNING_KEY, "1" if options.allow_spinning else "0")
    return built


def _describe(names: Sequence[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def check_io(graph_file: Path, kind: str, actual: Sequence[str], expected: Sequence[str]) -> None:
    """Raise a one-line :class:`BundleError` when a graph's ``kind`` names differ from the manifest's."""
    missing = set(expected) - set(actual)
    unexpected = set(actual) - set(expected)
    if missing or unexpected:
        raise BundleError(
            f"{graph_file}: graph {kind} differ from the manifest: missing {_describe(missing)}; "
            f"unexpected {_describe(unexpected)}"
        )


class GraphSession:
    """One graph's session, with its input types for casting and its checked I/O names."""

    def __init__(self, role: str, path: Path, spec: GraphSpec, options: RuntimeOptions,
                 providers: ProviderChoice) -> None:
        self.role = role
        self.path = path
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=session_options(options), providers=list(providers.providers)
            )
        except _ORT_LOAD_ERRORS as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BundleError(f"{path}: ONNX Runtime cannot load the {role} graph: {first_line}") from None
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        check_io(path, "inputs", [item.name for item in inputs], spec.inputs)
        check_io(path, "outputs", [item.name for item in outputs], spec.outputs)
        self.input_types = {item.name: _ONNX_TO_NUMPY.get(item.type, np.float32) for item in inputs}
        self.output_names = [item.name for item in outputs]

    @property
    def provider(self) -> str:
        """The execution provider ONNX Runtime placed this session on first."""
        return self._session.get_providers()[0]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with inputs cast to the graph's types; returns every output by name."""
        cast = {name: np.ascontiguousarray(value, dtype=self.input_types[name]) for name, value in feeds.items()}
        values = self._session.run(self.output_names, cast)
        return dict(zip(self.output_names, values))


def open_session(bundle: Bundle, role: str, options: RuntimeOptions,
                 providers: ProviderChoice | None = None) -> GraphSession:
    """Open the bundle's graph for ``role``."""
    chosen = providers if providers is not None else choose_providers(options.providers)
    spec = bundle.manifest.graphs[role]
    return GraphSession(role, bundle.graph_path(role), spec, options, chosen)


def open_sessions(bundle: Bundle, roles: Sequence[str], options: RuntimeOptions) -> dict[str, GraphSession]:
    """Open one session per role, with one provider choice (and one warning per missing provider)."""
    chosen = choose_providers(options.providers)
    sessions = {role: open_session(bundle, role, options, chosen) for role in roles}
    for role, session in sessions.items():
        logger.debug("%s: %s on %s", role, session.path.name, session.provider)
    return sessions
