"""ONNX Runtime sessions: provider fallback and requirement, provider options, I/O names checked against the
manifest. Nothing here assumes whether this machine's ONNX Runtime offers a GPU provider: availability is
injected, or a provider this build lacks is picked."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
from seamless_daemon.bundle import ROLE_SPEECH_ENCODER, ROLE_T2U, BundleError, load_bundle
from seamless_daemon.config import MIB
from seamless_daemon.provider_spec import CudaSettings, DimRange, ProviderSpec, TensorrtSettings, provider_spec
from seamless_daemon.runtime import sessions as sessions_module
from seamless_daemon.runtime.model import MODEL_ROLES
from seamless_daemon.runtime.pipeline import Translator
from seamless_daemon.runtime.providers import ProviderChoice, ProviderError, cuda_options, tensorrt_options
from seamless_daemon.runtime.sessions import (
    CPU_PROVIDER,
    RuntimeOptions,
    choose_providers,
    graph_target,
    open_session,
    open_sessions,
    session_options,
)
from seamless_daemon.runtime.trt_profile import (
    DEFAULT_DIMS,
    GraphInput,
    ShapeProfile,
    dim_ranges,
    read_graph_inputs,
    shape_profile,
)

CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


def _missing_provider() -> str:
    """A provider ONNX Runtime knows but this build does not offer (there is always one)."""
    offered = set(ort.get_available_providers())
    return next(name for name in ort.get_all_providers() if name not in offered)


def test_unavailable_provider_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        choice = choose_providers([CUDA, CPU_PROVIDER], available=[CPU_PROVIDER])
    assert choice.providers == (CPU_PROVIDER,)
    assert choice.dropped == (CUDA,)
    assert any(CUDA in record.getMessage() for record in caplog.records)


def test_cpu_is_always_the_last_fallback() -> None:
    cpu_first = choose_providers([CPU_PROVIDER, CUDA], available=[CUDA, CPU_PROVIDER])
    assert cpu_first.providers == (CUDA, CPU_PROVIDER) and cpu_first.requested == CUDA
    assert choose_providers([CUDA], available=[CUDA, CPU_PROVIDER]).providers == (CUDA, CPU_PROVIDER)


def test_readable_names_choose_the_same_providers() -> None:
    available = [TENSORRT, CUDA, CPU_PROVIDER]
    readable = choose_providers(["tensorrt", "cuda", "cpu"], available=available)
    assert readable.providers == choose_providers([TENSORRT, CUDA, CPU_PROVIDER], available=available).providers
    assert readable.providers == (TENSORRT, CUDA, CPU_PROVIDER) and readable.requested == TENSORRT


def test_an_unknown_provider_name_is_refused() -> None:
    with pytest.raises(ValueError, match="providers: unknown provider"):
        RuntimeOptions(providers=("gpu",))


def test_require_provider_refuses_a_missing_first_provider() -> None:
    with pytest.raises(ProviderError) as caught:
        choose_providers([CUDA, CPU_PROVIDER], available=[CPU_PROVIDER], require_first=True)
    message = str(caught.value)
    assert message.startswith(f"runtime.require_provider: {CUDA} is not available in this ONNX Runtime build")
    assert "\n" not in message
    kept = choose_providers([CUDA, CPU_PROVIDER], available=[CUDA, CPU_PROVIDER], require_first=True)
    assert kept.providers == (CUDA, CPU_PROVIDER)


def test_a_provider_this_build_lacks_falls_back_to_cpu_visibly(tiny_bundle: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    missing = _missing_provider()
    with caplog.at_level(logging.INFO):
        translator = Translator(load_bundle(tiny_bundle), RuntimeOptions(providers=(missing, CPU_PROVIDER)))
    assert translator.provider == CPU_PROVIDER
    for session in translator.sessions.values():
        assert session.requested_provider == missing and session.fell_back
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and missing in r.getMessage()]
    assert len(warnings) == 1 and "not available in this ONNX Runtime build" in warnings[0]
    assert any(f"asked for {missing} but runs on {CPU_PROVIDER} (not in this ONNX Runtime build)" in r.getMessage()
               for r in caplog.records)


@pytest.mark.filterwarnings("ignore:Specified provider")  # ONNX Runtime's own warning about the forced provider
def test_a_session_placed_elsewhere_is_reported_or_refused(tiny_bundle: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """ONNX Runtime itself placing a session on CPU (a GPU provider that failed to start) is forced here by
    handing it a provider this build lacks."""
    missing = _missing_provider()
    bundle = load_bundle(tiny_bundle)
    forced = ProviderChoice(specs=(ProviderSpec(missing), ProviderSpec(CPU_PROVIDER)), requested=missing)
    with caplog.at_level(logging.WARNING):
        session = open_session(bundle, ROLE_T2U, RuntimeOptions(), forced)
    assert session.fell_back and session.provider == CPU_PROVIDER
    assert any(f"asked for {missing} but runs on {CPU_PROVIDER} (ONNX Runtime could not start it" in r.getMessage()
               and r.levelno == logging.WARNING for r in caplog.records)
    with pytest.raises(ProviderError) as caught:
        open_session(bundle, ROLE_T2U, RuntimeOptions(require_provider=True), forced)
    assert str(caught.value).startswith(f"runtime.require_provider: the {ROLE_T2U} session asked for {missing}")


def test_cuda_options_are_onnx_runtime_names() -> None:
    settings = CudaSettings(device_id=1, gpu_mem_limit_mib=2, cudnn_conv_algo_search="heuristic")
    assert cuda_options(settings) == {"device_id": 1, "cudnn_conv_algo_search": "HEURISTIC", "gpu_mem_limit": 2 * MIB}
    assert cuda_options(CudaSettings()) == {"device_id": 0, "cudnn_conv_algo_search": "EXHAUSTIVE"}


def test_tensorrt_options_carry_settings_caches_and_profile(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    settings = TensorrtSettings(device_id=2, fp16=True, max_workspace_mib=64, engine_cache_dir=tmp_path,
                                profile={"T": DimRange(2, 3, 4)})
    options = tensorrt_options(settings, graph_target(bundle, ROLE_SPEECH_ENCODER))
    assert options["device_id"] == 2 and options["trt_fp16_enable"] is True
    assert options["trt_max_workspace_size"] == 64 * MIB
    cache = Path(str(options["trt_engine_cache_path"]))
    assert cache.is_dir() and cache.parent.parent == tmp_path and cache.name.startswith(f"{ROLE_SPEECH_ENCODER}-")
    assert options["trt_engine_cache_enable"] is True and options["trt_timing_cache_path"] == str(cache)
    features = bundle.manifest.features.num_mel_bins * bundle.manifest.features.stride
    assert f"input_features:1x2x{features}" in str(options["trt_profile_min_shapes"])
    assert f"input_features:1x3x{features}" in str(options["trt_profile_opt_shapes"])
    assert f"input_features:1x4x{features}" in str(options["trt_profile_max_shapes"])
    uncached = tensorrt_options(TensorrtSettings(), graph_target(bundle, ROLE_SPEECH_ENCODER))
    assert "trt_engine_cache_path" not in uncached and uncached["trt_fp16_enable"] is False


def test_shape_profiles_cover_every_dynamic_input_or_none() -> None:
    ranges = {"B": DimRange(1, 1, 1), "T": DimRange(1, 5, 9)}
    inputs = [GraphInput("x", ("B", "T", 4)), GraphInput("sr", ()), GraphInput("y", ("B", 2))]
    assert shape_profile("g", inputs, ranges) == ShapeProfile("x:1x1x4,y:1x2", "x:1x5x4,y:1x2", "x:1x9x4,y:1x2")
    assert shape_profile("g", [GraphInput("x", ("B", "Q"))], ranges) is None  # no range for Q
    assert shape_profile("g", [GraphInput("x", (None, 576))], ranges) is None  # an unnamed dimension
    assert shape_profile("g", [GraphInput("sr", ())], ranges) is None  # nothing dynamic


def test_default_dimension_ranges_cover_every_named_dimension_of_the_bundle(tiny_bundle: Path) -> None:
    """A dimension name the export adds must get a default range here, or TensorRT loses its explicit profile."""
    bundle = load_bundle(tiny_bundle)
    for role in bundle.manifest.graphs:
        inputs = read_graph_inputs(bundle.graph_path(role))
        named = [dim for item in inputs for dim in item.dims if isinstance(dim, str)]
        if not named or any(dim is None for item in inputs for dim in item.dims):
            continue  # nothing dynamic, or unnamed dimensions (the VAD): profiled by ONNX Runtime
        assert set(named) <= set(DEFAULT_DIMS), role
        profile = shape_profile(role, inputs, dim_ranges({}))
        assert profile is not None, role
        for item in inputs:
            if "P" in item.dims:  # the first decoding step runs with an empty past
                min_shape = next(shape for shape in profile.min_shapes.split(",") if shape.startswith(item.name + ":"))
                assert min_shape.split(":")[1].split("x")[item.dims.index("P")] == "0"


def test_provider_options_reach_onnx_runtime(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CUDA offered (injected), its options go to InferenceSession; the session itself is built on CPU."""
    calls: list[dict[str, Any]] = []
    real = ort.InferenceSession

    def recording(path: str, **kwargs: Any) -> ort.InferenceSession:
        calls.append(kwargs)
        return real(path, sess_options=kwargs["sess_options"], providers=[CPU_PROVIDER])

    monkeypatch.setattr(sessions_module.ort, "InferenceSession", recording)
    cuda = provider_spec("cuda", {"device_id": 3, "gpu_mem_limit_mib": 5})
    choice = choose_providers([cuda, "cpu"], available=[CUDA, CPU_PROVIDER])
    open_session(load_bundle(tiny_bundle), ROLE_T2U, RuntimeOptions(providers=(cuda, "cpu")), choice)
    assert calls[0]["providers"] == [CUDA, CPU_PROVIDER]
    assert calls[0]["provider_options"] == [
        {"device_id": 3, "cudnn_conv_algo_search": "EXHAUSTIVE", "gpu_mem_limit": 5 * MIB}, {}]


def test_session_options_carry_the_runtime_options() -> None:
    built = session_options(RuntimeOptions(intra_op_threads=2, inter_op_threads=1, graph_optimization="basic"))
    assert built.intra_op_num_threads == 2
    assert built.inter_op_num_threads == 1
    assert built.graph_optimization_level.name == "ORT_ENABLE_BASIC"


def test_unknown_optimisation_level_is_refused() -> None:
    with pytest.raises(ValueError, match="graph_optimization"):
        RuntimeOptions(graph_optimization="fastest")


def test_sessions_expose_the_manifest_names(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    sessions = open_sessions(bundle, MODEL_ROLES, RuntimeOptions())
    for role, session in sessions.items():
        assert sorted(session.input_types) == sorted(bundle.manifest.graphs[role].inputs)
        assert sorted(session.output_names) == sorted(bundle.manifest.graphs[role].outputs)


def test_graph_names_differing_from_the_manifest_name_the_graph_file(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    inputs = manifest["graphs"][ROLE_T2U]["inputs"]
    inputs[inputs.index("char_input_ids")] = "char_ids"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError) as caught:
        open_session(load_bundle(copy), ROLE_T2U, RuntimeOptions())
    message = str(caught.value)
    assert "t2u.onnx" in message and "char_ids" in message and "char_input_ids" in message
    assert "\n" not in message
