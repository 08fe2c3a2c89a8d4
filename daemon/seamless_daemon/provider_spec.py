"""Execution providers as the config asks for them (``runtime.providers``): names, CUDA and TensorRT settings.

Each item of the list is a provider name or a mapping with ``name`` and that provider's settings; names are
``cpu``, ``cuda``, ``tensorrt`` or ONNX Runtime's own (``CUDAExecutionProvider``, ...)::

    providers: [cpu]
    providers: [CUDAExecutionProvider, CPUExecutionProvider]
    providers:
      - {name: tensorrt, device_id: 0, fp16: true, profile: {T: [1, 250, 1500]}}
      - {name: cuda, device_id: 0}
      - cpu

Only CUDA and TensorRT take settings; every other provider is a bare name. The runtime turns a
:class:`ProviderSpec` into ONNX Runtime's provider options (``seamless_daemon.runtime.providers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamless_daemon.config_checks import (
    Checker,
    Invalid,
    absolute_path,
    boolean,
    check_keys,
    enum,
    integer,
    is_int,
    optional,
    show,
    text,
)

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
PROVIDER_ALIASES = {"cpu": CPU_PROVIDER, "cuda": CUDA_PROVIDER, "tensorrt": TENSORRT_PROVIDER}
ORT_PROVIDER_SUFFIX = "ExecutionProvider"
CONV_ALGO_SEARCHES = ("exhaustive", "heuristic", "default")
NAME_KEY = "name"
RANGE_LENGTH = 3  # [min, opt, max]


@dataclass(frozen=True)
class DimRange:
    """TensorRT optimisation-profile range of one named dynamic dimension."""

    min: int
    opt: int
    max: int


@dataclass(frozen=True)
class CudaSettings:
    device_id: int = 0
    gpu_mem_limit_mib: int | None = None  # None: no limit on the CUDA memory arena
    cudnn_conv_algo_search: str = "exhaustive"  # ONNX Runtime's default


@dataclass(frozen=True)
class TensorrtSettings:
    device_id: int = 0
    fp16: bool = False
    max_workspace_mib: int | None = None  # None: ONNX Runtime's default
    engine_cache: bool = True
    engine_cache_dir: Path | None = None  # None: <service.state_dir>/tensorrt (filled in by the config loader)
    timing_cache: bool = True
    profile: Mapping[str, DimRange] = field(default_factory=dict)  # overrides of the default dimension ranges


@dataclass(frozen=True)
class ProviderSpec:
    """One requested execution provider; ``cuda``/``tensorrt`` are set for those providers only."""

    name: str
    cuda: CudaSettings | None = None
    tensorrt: TensorrtSettings | None = None


def provider_name(value: Any, key: str) -> str:
    """ONNX Runtime's name for ``value``: an alias (``cuda``) or a name ending in ``ExecutionProvider``."""
    name = text(value, key)
    if name in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[name]
    if name.endswith(ORT_PROVIDER_SUFFIX):
        return name
    raise Invalid(key, f"unknown provider {show(value)}; use {', '.join(PROVIDER_ALIASES)} "
                       f"or an ONNX Runtime provider name ending in {ORT_PROVIDER_SUFFIX}")


def provider_spec(name: str | ProviderSpec, settings: Mapping[str, Any] | None = None) -> ProviderSpec:
    """A spec for ``name`` (alias or ONNX Runtime name) with that provider's default settings or ``settings``."""
    if isinstance(name, ProviderSpec):
        return name
    full = provider_name(name, NAME_KEY)
    given = dict(settings or {})
    if full == CUDA_PROVIDER:
        return ProviderSpec(full, cuda=CudaSettings(**given))
    if full == TENSORRT_PROVIDER:
        return ProviderSpec(full, tensorrt=TensorrtSettings(**given))
    return ProviderSpec(full)


def _dim_range(value: Any, key: str) -> DimRange:
    valid = (isinstance(value, list) and len(value) == RANGE_LENGTH and all(is_int(item) for item in value)
             and 0 <= value[0] <= value[1] <= value[2] and value[2] >= 1)
    if not valid:
        raise Invalid(key, f"must be [min, opt, max] with 0 <= min <= opt <= max and max >= 1, got {show(value)}")
    return DimRange(*value)


def _profile(value: Any, key: str) -> dict[str, DimRange]:
    if not isinstance(value, dict):
        raise Invalid(key, f"must be a mapping of dimension names to [min, opt, max], got {show(value)}")
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise Invalid(f"{key}.{name}", "dimension names must be non-empty strings")
    return {name: _dim_range(item, f"{key}.{name}") for name, item in value.items()}


SETTINGS_CHECKERS: dict[str, dict[str, Checker]] = {
    CUDA_PROVIDER: {
        "device_id": integer(0),
        "gpu_mem_limit_mib": optional(integer(1), "no limit"),
        "cudnn_conv_algo_search": enum(CONV_ALGO_SEARCHES),
    },
    TENSORRT_PROVIDER: {
        "device_id": integer(0),
        "fp16": boolean,
        "max_workspace_mib": optional(integer(1), "ONNX Runtime's default"),
        "engine_cache": boolean,
        "engine_cache_dir": optional(absolute_path, "<service.state_dir>/tensorrt"),
        "timing_cache": boolean,
        "profile": _profile,
    },
}


def _provider_item(value: Any, key: str) -> ProviderSpec:
    if not isinstance(value, dict):
        return provider_spec(provider_name(value, key))
    if NAME_KEY not in value:
        raise Invalid(f"{key}.{NAME_KEY}", "required key is missing")
    name = provider_name(value[NAME_KEY], f"{key}.{NAME_KEY}")
    checkers = SETTINGS_CHECKERS.get(name, {})
    check_keys(value, {NAME_KEY: None, **checkers}, f"{key}.")
    settings = {item: checkers[item](setting, f"{key}.{item}") for item, setting in value.items() if item != NAME_KEY}
    return provider_spec(name, settings)


def check_providers(value: Any, key: str) -> tuple[ProviderSpec, ...]:
    """The ``runtime.providers`` checker: a non-empty list of names or mappings."""
    if not isinstance(value, list) or not value:
        raise Invalid(key, f"must be a non-empty list of provider names ({', '.join(PROVIDER_ALIASES)}, ...) "
                           f"or mappings with a name, got {show(value)}")
    specs: list[ProviderSpec] = []
    for index, item in enumerate(value):
        spec = _provider_item(item, f"{key}[{index}]")
        if any(seen.name == spec.name for seen in specs):
            raise Invalid(f"{key}[{index}]", f"{spec.name} is listed twice")
        specs.append(spec)
    return tuple(specs)
