"""Precision recipes on the trained toy model: fp16 and int8 bundles keep fp32's text and speech length, the
self-measurement reports it, and the recipes keep the duration predictors in float32."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from seamless_daemon.bundle import MANIFEST_NAME, ROLE_T2U, ROLE_VAD, ROLE_VOCODER, load_bundle
from seamless_export.exporter import ExportOptions, export_bundle
from seamless_export.precision import (
    FP16,
    FP32,
    INT8,
    T2U_DURATION_SCOPE,
    GraphRecipe,
    RecipeError,
    fp32_node_names,
    graph_precisions,
)
from seamless_export.quality import (
    PrecisionReport,
    SpeechInput,
    attach_report,
    load_default_inputs,
    measure_against_fp32,
    positional_agreement,
    word_error_rate,
)
from seamless_export.quantize import to_int8

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from make_speech import NOISE_LEVEL, SAMPLE_RATE, load_vocabulary, speak  # noqa: E402

pytestmark = pytest.mark.slow

TOY_LANGUAGES = ("eng", "fra", "spa")
EXTRA_UTTERANCES = 8
EXTRA_SEED = 11
EXTRA_WORDS = (3, 6)
EXTRA_SPEEDS = (135, 175)
EXTRA_VOICES = ("en+m3", "en+f3", "en+m6", "en-us+m1")
PAD_S = 0.2
WER_MARGIN = 0.02  # a variant may add this much WER against the references over fp32's
LENGTH_TOLERANCE = 0.05  # mean speech length within 5 % of fp32's
MIN_TOKEN_AGREEMENT = 0.9


def _espeak_inputs() -> list[SpeechInput]:
    """Toy-vocabulary sentences spoken by espeak-ng, with their word-by-word references."""
    if shutil.which("espeak-ng") is None:
        return []
    langs, vocab = load_vocabulary()
    rng = np.random.default_rng(EXTRA_SEED)
    pad = np.zeros(int(PAD_S * SAMPLE_RATE), dtype=np.float32)
    inputs = []
    for index in range(EXTRA_UTTERANCES):
        rows = [vocab[int(i)] for i in rng.integers(0, len(vocab), int(rng.integers(EXTRA_WORDS[0], EXTRA_WORDS[1])))]
        speed = int(rng.integers(*EXTRA_SPEEDS))
        audio = np.concatenate([pad, speak(" ".join(row[0] for row in rows), EXTRA_VOICES[index % 4], speed), pad])
        audio = audio + (rng.standard_normal(audio.size) * NOISE_LEVEL).astype(np.float32)
        references = {lang: " ".join(row[column] for row in rows) for column, lang in enumerate(langs)}
        inputs.append(SpeechInput(f"espeak_{index}", audio.astype(np.float32), references))
    return inputs


@pytest.fixture(scope="module")
def speech_inputs() -> list[SpeechInput]:
    return [*load_default_inputs(), *_espeak_inputs()]


@pytest.fixture(scope="module")
def variant_bundles(tmp_path_factory: pytest.TempPathFactory, toy_checkpoint: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("precision")
    bundles = {}
    for precision in (FP16, INT8):
        export_bundle(str(toy_checkpoint), root / precision, ExportOptions(precision=precision))
        bundles[precision] = root / precision
    return bundles


@pytest.fixture(scope="module")
def reports(toy_bundle: Path, variant_bundles: dict[str, Path],
            speech_inputs: list[SpeechInput]) -> dict[str, PrecisionReport]:
    return {
        precision: measure_against_fp32(toy_bundle, bundle, speech_inputs)
        for precision, bundle in variant_bundles.items()
    }


@pytest.mark.parametrize("precision", [FP16, INT8])
def test_variant_keeps_fp32_text_and_speech_length(precision: str, reports: dict[str, PrecisionReport],
                                                   speech_inputs: list[SpeechInput]) -> None:
    report = reports[precision]
    assert report.languages == TOY_LANGUAGES
    assert report.pairs == len(speech_inputs) * len(TOY_LANGUAGES)
    assert report.reference_wer is not None and report.reference_wer.words > 0
    assert report.reference_wer.candidate <= report.reference_wer.fp32 + WER_MARGIN, report
    assert report.speech_length_ratio is not None
    assert abs(report.speech_length_ratio - 1.0) <= LENGTH_TOLERANCE, report
    assert report.token_agreement >= MIN_TOKEN_AGREEMENT, report


@pytest.mark.parametrize("precision", [FP16, INT8])
def test_report_fields_are_sane(precision: str, reports: dict[str, PrecisionReport]) -> None:
    report = reports[precision]
    assert report.candidate_precision == precision
    for rate in (report.text_exact_match, report.token_agreement, report.unit_agreement,
                 report.speech_length_match):
        assert 0.0 <= rate <= 1.0
    assert report.text_wer_vs_fp32 >= 0.0 and report.speech_length_ratio is not None
    assert report.speech_length_ratio > 0.0
    for run in (FP32, "candidate"):
        assert report.mean_ms[run]["total"] > 0.0
    record = report.record()
    json.dumps(record)  # JSON-ready for the manifest
    assert record["languages"] == list(TOY_LANGUAGES)
    assert set(record) >= {"text_exact_match", "token_agreement", "unit_agreement", "speech_length_ratio",
                           "text_wer_vs_fp32", "reference_wer", "pairs"}


@pytest.mark.parametrize("precision", [FP16, INT8])
def test_exported_bundle_records_its_precisions_and_report(precision: str, variant_bundles: dict[str, Path]) -> None:
    manifest = load_bundle(variant_bundles[precision]).manifest
    assert {role: spec.precision for role, spec in manifest.graphs.items()} == graph_precisions(
        precision, tuple(manifest.graphs))
    assert manifest.extra["graph_precisions"] == graph_precisions(precision, tuple(manifest.graphs))
    report = manifest.extra["precision_report"]
    assert report["candidate_precision"] == precision and report["languages"] == list(TOY_LANGUAGES)
    assert report["pairs"] == len(load_default_inputs()) * len(TOY_LANGUAGES)


def test_attach_report_measures_against_bare_fp32_graphs(tmp_path: Path, toy_bundle: Path,
                                                         variant_bundles: dict[str, Path]) -> None:
    """As the exporter calls it: the fp32 graphs alone in a folder, the finished candidate bundle."""
    graphs = tmp_path / "fp32-graphs"
    graphs.mkdir()
    manifest = load_bundle(toy_bundle).manifest
    for role, spec in manifest.graphs.items():
        if role != ROLE_VAD:
            shutil.copyfile(toy_bundle / spec.path, graphs / spec.path)
    candidate = tmp_path / "int8"
    shutil.copytree(variant_bundles[INT8], candidate)
    entries = attach_report(graphs, candidate)
    assert sorted(path.name for path in graphs.iterdir()) == sorted(
        spec.path for role, spec in manifest.graphs.items() if role != ROLE_VAD
    ), "the reference bundle assembled next to the graphs is removed"
    extra = load_bundle(candidate).manifest.extra  # checksums still hold
    assert extra["precision_report"] == entries["precision_report"]
    assert extra["graph_precisions"] == graph_precisions(INT8, tuple(load_bundle(toy_bundle).manifest.graphs))
    assert extra["precision_report"]["pairs"] == len(load_default_inputs()) * len(TOY_LANGUAGES)
    assert extra["precision_report"]["speech_length_ratio"] is not None
    assert "verification" in extra, "the exporter's own entries are kept"
    assert (candidate / MANIFEST_NAME).is_file()


def _node(model: onnx.ModelProto, fragment: str, op_type: str) -> onnx.NodeProto:
    return next(node for node in model.graph.node if fragment in node.name and node.op_type == op_type)


def test_fp16_duration_predictors_run_in_float32(variant_bundles: dict[str, Path]) -> None:
    for role, rounding in ((ROLE_T2U, "/decoder/Round"), (ROLE_VOCODER, "/vocoder/Round")):
        model = onnx.load(str(variant_bundles[FP16] / f"{role}.onnx"))
        producers = {name: node for node in model.graph.node for name in node.output}
        # The rounding reads the expm1 of the predictor directly: no float16 round trip on the way.
        sub = producers[_node(model, rounding, "Round").input[0]]
        assert sub.op_type == "Sub" and producers[sub.input[0]].op_type == "Exp"
        assert producers[producers[sub.input[0]].input[0]].op_type == "Squeeze"
        matmul = _node(model, "uration_predictor/proj/MatMul" if role == ROLE_T2U else "dur_predictor/proj/MatMul",
                       "MatMul")
        weight = next(t for t in model.graph.initializer if t.name == matmul.input[1])
        assert weight.data_type == onnx.TensorProto.FLOAT


def test_int8_keeps_the_vocoder_and_t2u_durations_in_float32(toy_bundle: Path,
                                                              variant_bundles: dict[str, Path]) -> None:
    quantised = ("MatMulInteger", "DynamicQuantizeLinear")
    vocoder = onnx.load(str(variant_bundles[INT8] / "vocoder.onnx"))
    assert not any(node.op_type in quantised for node in vocoder.graph.node)
    t2u = onnx.load(str(variant_bundles[INT8] / "t2u.onnx"))
    assert _node(t2u, T2U_DURATION_SCOPE + "proj/", "MatMul")  # the duration predictor stays float
    for role in ("speech_encoder", "t2u"):
        graph = onnx.load(str(variant_bundles[INT8] / f"{role}.onnx"))
        assert any(node.op_type == "MatMulInteger" for node in graph.graph.node), role
    assert graph_precisions(INT8, (ROLE_T2U, ROLE_VOCODER, ROLE_VAD)) == {
        ROLE_T2U: INT8, ROLE_VOCODER: FP32, ROLE_VAD: FP32}


def test_int8_scope_leaves_the_duration_predictor_unquantised(tmp_path: Path, toy_bundle: Path) -> None:
    target = tmp_path / "t2u.onnx"
    to_int8(toy_bundle / "t2u.onnx", target, GraphRecipe(INT8, fp32_scopes=(T2U_DURATION_SCOPE,)), ROLE_T2U)
    t2u = onnx.load(str(target))
    assert _node(t2u, T2U_DURATION_SCOPE + "proj/", "MatMul")  # not replaced by an integer product
    assert any(node.op_type == "MatMulInteger" for node in t2u.graph.node)


def test_a_scope_missing_from_the_graph_is_an_error(toy_bundle: Path) -> None:
    encoder = onnx.load(str(toy_bundle / "speech_encoder.onnx"))
    with pytest.raises(RecipeError, match="speech_encoder.*duration_predictor"):
        fp32_node_names(encoder.graph, GraphRecipe(FP16, fp32_scopes=(T2U_DURATION_SCOPE,)), "speech_encoder")


def test_agreement_and_wer_arithmetic() -> None:
    assert positional_agreement([5, 6, 7, 8], [5, 6, 9]) == 0.5
    assert positional_agreement([], []) == 1.0 and positional_agreement([], [1]) == 0.0
    assert word_error_rate(["a b c d", "e f"], ["a x c d", "e f g"]) == pytest.approx(2 / 6)
