"""ONNX Runtime sessions: provider fallback, options, I/O names checked against the manifest."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from seamless_daemon.bundle import ROLE_T2U, BundleError, load_bundle
from seamless_daemon.runtime.pipeline import PIPELINE_ROLES, Translator
from seamless_daemon.runtime.sessions import (
    CPU_PROVIDER,
    RuntimeOptions,
    choose_providers,
    open_session,
    open_sessions,
    session_options,
)

CUDA = "CUDAExecutionProvider"


def test_unavailable_provider_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        choice = choose_providers([CUDA, CPU_PROVIDER], available=[CPU_PROVIDER])
    assert choice.providers == (CPU_PROVIDER,)
    assert choice.dropped == (CUDA,)
    assert any(CUDA in record.getMessage() for record in caplog.records)


def test_cpu_is_always_the_last_fallback() -> None:
    assert choose_providers([CPU_PROVIDER, CUDA], available=[CUDA, CPU_PROVIDER]).providers == (CUDA, CPU_PROVIDER)
    assert choose_providers([CUDA], available=[CUDA, CPU_PROVIDER]).providers == (CUDA, CPU_PROVIDER)


def test_cuda_request_falls_back_to_cpu_on_this_machine(tiny_bundle: Path) -> None:
    translator = Translator(load_bundle(tiny_bundle), RuntimeOptions(providers=(CUDA, CPU_PROVIDER)))
    assert translator.provider == CPU_PROVIDER


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
    sessions = open_sessions(bundle, PIPELINE_ROLES, RuntimeOptions())
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
