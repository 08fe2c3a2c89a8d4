"""ONNX Runtime sessions for the bundle's graphs.

Sessions are built with explicit :class:`onnxruntime.SessionOptions` from :class:`RuntimeOptions`. Requested
execution providers that this ONNX Runtime build does not offer are dropped with a warning (refused with
``require_provider``); the CPU provider is always appended as the last fallback; CUDA and TensorRT get their
options (``seamless_daemon.runtime.providers``). A session that ONNX Runtime placed on another provider than the
first one asked for (a GPU provider that failed to start) is logged and shows in :attr:`GraphSession.fell_back`.
Every session's input and output names are checked against the manifest. An ONNX Runtime session may be run from
several threads at once, so one set of sessions serves every utterance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from seamless_daemon.bundle import Bundle, BundleError, GraphSpec
from seamless_daemon.config import RuntimeConfig
from seamless_daemon.provider_spec import CPU_PROVIDER, ProviderSpec
from seamless_daemon.runtime.providers import (
    REQUIRE_KEY,
    GraphTarget,
    ProviderChoice,
    ProviderError,
    as_specs,
    choose_providers,
    graph_digest,
    ort_provider_options,
)

logger = logging.getLogger(__name__)

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
    """How sessions are built. Thread counts of 0 leave the choice to ONNX Runtime. Providers are names
    (``cuda``, ``CUDAExecutionProvider``) or :class:`ProviderSpec` with their settings."""

    providers: tuple[str | ProviderSpec, ...] = (CPU_PROVIDER,)
    require_provider: bool = False  # the first provider must be offered and used, else ProviderError
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
        as_specs(self.providers)  # a bad name is a ValueError here, not when the sessions open

    @classmethod
    def from_config(cls, runtime: RuntimeConfig) -> RuntimeOptions:
        return cls(providers=runtime.providers, require_provider=runtime.require_provider,
                   intra_op_threads=runtime.intra_op_threads, inter_op_threads=runtime.inter_op_threads)


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


def graph_session_options(options: RuntimeOptions, spec: GraphSpec) -> ort.SessionOptions:
    """The session options of ``options`` plus the config entries the bundle declares for this graph."""
    built = session_options(options)
    for key, value in spec.session_config.items():
        built.add_session_config_entry(key, value)
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
                 providers: ProviderChoice, target: GraphTarget | None = None) -> None:
        self.role = role
        self.path = path
        self.requested_provider = providers.requested
        graph = target if target is not None else GraphTarget(role, path, graph_digest([str(path)]))
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=graph_session_options(options, spec), providers=list(providers.providers),
                provider_options=[ort_provider_options(item, graph) for item in providers.specs],
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
        self._check_placement(options.require_provider, providers)

    def _check_placement(self, required: bool, providers: ProviderChoice) -> None:
        if not self.fell_back:
            return
        missing = self.requested_provider in providers.dropped  # already warned about, once for all sessions
        reason = "not in this ONNX Runtime build" if missing else "ONNX Runtime could not start it; see its message"
        problem = f"the {self.role} session asked for {self.requested_provider} but runs on {self.provider} ({reason})"
        if required:
            raise ProviderError(REQUIRE_KEY, problem)
        logger.log(logging.INFO if missing else logging.WARNING, "%s", problem)

    @property
    def provider(self) -> str:
        """The execution provider ONNX Runtime placed this session on first."""
        return self._session.get_providers()[0]

    @property
    def fell_back(self) -> bool:
        """True when the first provider asked for (e.g. CUDA) is not the one the session got (e.g. CPU)."""
        return self.provider != self.requested_provider

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run with inputs cast to the graph's types; returns every output by name."""
        cast = {name: np.ascontiguousarray(value, dtype=self.input_types[name]) for name, value in feeds.items()}
        values = self._session.run(self.output_names, cast)
        return dict(zip(self.output_names, values))


def graph_target(bundle: Bundle, role: str) -> GraphTarget:
    """The graph of ``role`` with a digest of its files' checksums (for per-graph TensorRT caches)."""
    spec = bundle.manifest.graphs[role]
    files = bundle.manifest.files
    checksums = [files.get(rel, rel) for rel in (spec.path, *spec.external_data)]
    return GraphTarget(role, bundle.graph_path(role), graph_digest(checksums))


def open_session(bundle: Bundle, role: str, options: RuntimeOptions,
                 providers: ProviderChoice | None = None) -> GraphSession:
    """Open the bundle's graph for ``role``."""
    chosen = providers if providers is not None else choose_providers(options.providers,
                                                                      require_first=options.require_provider)
    spec = bundle.manifest.graphs[role]
    return GraphSession(role, bundle.graph_path(role), spec, options, chosen, graph_target(bundle, role))


def open_sessions(bundle: Bundle, roles: Sequence[str], options: RuntimeOptions) -> dict[str, GraphSession]:
    """Open one session per role, with one provider choice (and one warning per missing provider)."""
    chosen = choose_providers(options.providers, require_first=options.require_provider)
    sessions = {role: open_session(bundle, role, options, chosen) for role in roles}
    for role, session in sessions.items():
        logger.debug("%s: %s on %s", role, session.path.name, session.provider)
    return sessions
