"""Execution providers: which of the requested ones this ONNX Runtime build offers, and their options.

Requested providers this build does not offer are dropped with a warning (or, with ``require_first``, refused
with :class:`ProviderError`); the CPU provider is always the last fallback. CUDA and TensorRT get their options
from :class:`~seamless_daemon.provider_spec.ProviderSpec`: device, memory limit and cuDNN search for CUDA;
device, fp16, workspace, an engine and timing cache per graph and an explicit shape profile for TensorRT.
Option names are ONNX Runtime's (CUDA and TensorRT execution provider documentation).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from seamless_daemon.config import MIB
from seamless_daemon.config_checks import Invalid
from seamless_daemon.provider_spec import CPU_PROVIDER, CudaSettings, ProviderSpec, TensorrtSettings, provider_spec
from seamless_daemon.runtime.trt_profile import dim_ranges, read_graph_inputs, shape_profile

logger = logging.getLogger(__name__)

REQUIRE_KEY = "runtime.require_provider"
PROVIDERS_KEY = "runtime.providers"
CACHE_DIGEST_CHARS = 16


class ProviderError(Exception):
    """A provider request that cannot be honoured. ``key`` is the config key it concerns; one-line message."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ProviderChoice:
    """Providers handed to ONNX Runtime (CPU last), the requested ones it does not offer, and the provider every
    session should get (the first asked for)."""

    specs: tuple[ProviderSpec, ...]
    dropped: tuple[str, ...] = field(default_factory=tuple)
    requested: str = CPU_PROVIDER

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)


@dataclass(frozen=True)
class GraphTarget:
    """The graph a session is built for: TensorRT caches and profiles are per graph."""

    role: str
    path: Path
    digest: str  # of the graph's files (the manifest's checksums): a changed graph gets a fresh engine cache


def as_specs(requested: Sequence[str | ProviderSpec]) -> tuple[ProviderSpec, ...]:
    """Specs for names (``cuda``, ``CUDAExecutionProvider``) or specs; ValueError names a bad one."""
    try:
        return tuple(provider_spec(item) for item in requested)
    except Invalid as exc:
        raise ValueError(f"providers: {exc.problem}") from None


def choose_providers(requested: Sequence[str | ProviderSpec], available: Sequence[str] | None = None,
                     require_first: bool = False) -> ProviderChoice:
    """Keep the requested providers this build offers, in order, with the CPU provider last."""
    offered = list(ort.get_available_providers() if available is None else available)
    specs = as_specs(requested)
    if not specs:
        raise ValueError("providers: give at least one execution provider")
    first = specs[0].name
    if require_first and first not in offered:
        raise ProviderError(REQUIRE_KEY, f"{first} is not available in this ONNX Runtime build "
                                         f"(it offers {', '.join(offered)})")
    kept: list[ProviderSpec] = []
    dropped: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            continue
        seen.add(spec.name)
        if spec.name in offered:
            kept.append(spec)
        else:
            dropped.append(spec.name)
    for name in dropped:
        logger.warning("execution provider %s is not available in this ONNX Runtime build; skipping it", name)
    cpu = next((spec for spec in kept if spec.name == CPU_PROVIDER), ProviderSpec(CPU_PROVIDER))
    kept = [spec for spec in kept if spec.name != CPU_PROVIDER] + [cpu]
    # The provider each session should get: the first one asked for, or, when CPU was moved last, the one
    # that took its place.
    expected = first if first in dropped else kept[0].name
    return ProviderChoice(specs=tuple(kept), dropped=tuple(dropped), requested=expected)


def cuda_options(settings: CudaSettings) -> dict[str, object]:
    options: dict[str, object] = {
        "device_id": settings.device_id,
        "cudnn_conv_algo_search": settings.cudnn_conv_algo_search.upper(),
    }
    if settings.gpu_mem_limit_mib is not None:
        options["gpu_mem_limit"] = settings.gpu_mem_limit_mib * MIB
    return options


def engine_cache_folder(settings: TensorrtSettings, graph: GraphTarget) -> Path | None:
    """``<engine_cache_dir>/onnxruntime-<version>/<role>-<digest>``, created; None without a cache folder."""
    if settings.engine_cache_dir is None or not (settings.engine_cache or settings.timing_cache):
        return None
    folder = settings.engine_cache_dir / f"onnxruntime-{ort.__version__}" / f"{graph.role}-{graph.digest}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProviderError(PROVIDERS_KEY, f"TensorRT engine_cache_dir {settings.engine_cache_dir}: cannot create "
                                           f"{folder}: {exc.strerror or exc}") from None
    return folder


def tensorrt_options(settings: TensorrtSettings, graph: GraphTarget) -> dict[str, object]:
    options: dict[str, object] = {"device_id": settings.device_id, "trt_fp16_enable": settings.fp16}
    if settings.max_workspace_mib is not None:
        options["trt_max_workspace_size"] = settings.max_workspace_mib * MIB
    folder = engine_cache_folder(settings, graph)
    if folder is not None and settings.engine_cache:
        options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(folder))
    if folder is not None and settings.timing_cache:
        options.update(trt_timing_cache_enable=True, trt_timing_cache_path=str(folder))
    profile = shape_profile(graph.role, read_graph_inputs(graph.path), dim_ranges(settings.profile))
    if profile is not None:
        options.update(trt_profile_min_shapes=profile.min_shapes, trt_profile_opt_shapes=profile.opt_shapes,
                       trt_profile_max_shapes=profile.max_shapes)
    return options


def ort_provider_options(spec: ProviderSpec, graph: GraphTarget) -> dict[str, object]:
    """ONNX Runtime's options for ``spec`` on ``graph`` (empty for providers without settings)."""
    if spec.cuda is not None:
        return cuda_options(spec.cuda)
    if spec.tensorrt is not None:
        return tensorrt_options(spec.tensorrt, graph)
    return {}


def graph_digest(checksums: Sequence[str]) -> str:
    """A short digest of a graph's file checksums (graph and external data)."""
    return hashlib.sha256("\n".join(checksums).encode("ascii")).hexdigest()[:CACHE_DIGEST_CHARS]
