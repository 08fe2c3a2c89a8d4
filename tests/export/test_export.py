"""Bundle export: loadable bundles whose graphs match the manifest, verification that catches a broken graph,
precision variants, both weight layouts, and one-line CLI errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
import torch
from seamless_daemon.bundle import MANIFEST_NAME, REQUIRED_ROLES, load_bundle
from seamless_export import patches
from seamless_export.checkpoint import write_random_checkpoint
from seamless_export.exporter import ExportError, ExportOptions, export_bundle
from seamless_export.manifest import ManifestError
from seamless_export.presets import TINY
from seamless_export.verify import ParityError

PERTURBATION = 0.5


def _check_graph_names(bundle: Path) -> None:
    loaded = load_bundle(bundle)
    for role in REQUIRED_ROLES:
        spec = loaded.manifest.graphs[role]
        session = onnxruntime.InferenceSession(str(loaded.graph_path(role)), providers=["CPUExecutionProvider"])
        assert tuple(i.name for i in session.get_inputs()) == spec.inputs, role
        assert tuple(o.name for o in session.get_outputs()) == spec.outputs, role


def test_tiny_bundle_loads_and_graph_names_match_manifest(tiny_bundle: Path) -> None:
    _check_graph_names(tiny_bundle)
    manifest = load_bundle(tiny_bundle).manifest
    assert manifest.precision == "fp32" and manifest.opset == 17
    assert len(manifest.languages.speech_targets) >= 4
    assert manifest.max_new_tokens == TINY.max_new_tokens
    verification = manifest.extra["verification"]
    assert set(verification) == {"speech_encoder", "text_decoder_cross", "text_decoder", "t2u", "vocoder"}
    logits = verification["text_decoder"]["outputs"]["logits"]
    assert logits["max_abs_diff"] <= logits["limit"]


def test_decoder_weights_are_stored_once(tiny_bundle: Path) -> None:
    """One decoder graph, whose vocabulary projection reads the token embedding's own initializer."""
    import onnx

    manifest = load_bundle(tiny_bundle).manifest
    decoder = onnx.load(str(tiny_bundle / manifest.graphs["text_decoder"].path))
    table = (manifest.decoder.vocab_size, manifest.decoder.hidden_size)
    tables = [init.name for init in decoder.graph.initializer if tuple(init.dims) in (table, table[::-1])]
    assert len(tables) == 1
    readers = {node.op_type for node in decoder.graph.node if tables[0] in node.input}
    assert readers == {"Gather", "FusedMatMul"}
    cross = onnx.load(str(tiny_bundle / manifest.graphs["text_decoder_cross"].path))
    decoder_weights = {init.name for init in decoder.graph.initializer}
    assert not decoder_weights & {init.name for init in cross.graph.initializer}
    assert manifest.graphs["text_decoder"].session_config == {"session.disable_prepacking": "1"}


def test_toy_bundle_loads_with_its_languages(toy_bundle: Path, toy_checkpoint: Path) -> None:
    _check_graph_names(toy_bundle)
    manifest = load_bundle(toy_bundle).manifest
    generation = json.loads((toy_checkpoint / "generation_config.json").read_text())
    assert manifest.languages.speech_targets == ["eng", "fra", "spa"]
    assert dict(manifest.id_to_text) == generation["id_to_text"]
    assert manifest.decoder.num_layers == 2 and manifest.decoder.hidden_size == 144


def test_speech_to_speech_layout_exports(tmp_path: Path) -> None:
    checkpoint = write_random_checkpoint(tmp_path / "s2st", TINY, seed=2, layout="speech-to-speech").path
    export_bundle(str(checkpoint), tmp_path / "bundle")
    _check_graph_names(tmp_path / "bundle")


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_quantised_bundles_load_and_run(tiny_checkpoint: Path, tmp_path: Path, precision: str) -> None:
    bundle = tmp_path / precision
    export_bundle(str(tiny_checkpoint), bundle, ExportOptions(precision=precision))
    _check_graph_names(bundle)
    loaded = load_bundle(bundle)
    assert loaded.manifest.precision == precision
    assert loaded.manifest.extra["verification"]["vocoder"]["tolerance"] == precision
    session = onnxruntime.InferenceSession(str(loaded.graph_path("vocoder")))
    units = torch.arange(4, 12).unsqueeze(0).numpy()
    wave, lengths = session.run(None, {"input_ids": units, "speaker_id": [[0]], "lang_id": [[1]]})
    assert wave.dtype.name == "float32" and wave.shape[1] > 0 and lengths.shape == (1,)


def _perturbed_vocoder_forward(original):
    def forward(self, *args, **kwargs):
        waveform, lengths = original(self, *args, **kwargs)
        return waveform + PERTURBATION, lengths

    return forward


def test_broken_graph_fails_verification_and_writes_no_manifest(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vocoder = patches.seamless.SeamlessM4Tv2CodeHifiGan

    def perturb(opset: int):
        # Applied inside the gather_upsample patch, so it wraps the export-time vocoder forward only.
        return patches.swapped_attribute(vocoder, "forward", _perturbed_vocoder_forward(vocoder.forward))

    monkeypatch.setitem(patches.PATCHES, "perturb_vocoder", perturb)
    bundle = tmp_path / "broken"
    with pytest.raises(ParityError, match=r"^vocoder: output waveform max abs diff 0\.5 exceeds"):
        export_bundle(str(tiny_checkpoint), bundle)
    assert not (bundle / MANIFEST_NAME).exists()


def test_unsupported_generation_setting_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "penalised"
    shutil.copytree(tiny_checkpoint, checkpoint)
    path = checkpoint / "generation_config.json"
    data = json.loads(path.read_text())
    data["repetition_penalty"] = 1.3
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="repetition_penalty=1.3"):
        export_bundle(str(checkpoint), tmp_path / "bundle")


def test_non_empty_output_is_refused(tiny_checkpoint: Path, tiny_bundle: Path) -> None:
    with pytest.raises(ExportError, match="not an empty folder"):
        export_bundle(str(tiny_checkpoint), tiny_bundle)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "seamless_export.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_cli_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    result = _cli("export", str(missing), "-o", str(tmp_path / "bundle"))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0]
    assert not (tmp_path / "bundle").exists()


def test_cli_random_checkpoint_then_export(tmp_path: Path) -> None:
    made = _cli("random-checkpoint", str(tmp_path / "ckpt"), "--preset", "tiny", "--seed", "3")
    assert made.returncode == 0, made.stderr
    exported = _cli("export", str(tmp_path / "ckpt"), "-o", str(tmp_path / "bundle"))
    assert exported.returncode == 0, exported.stderr
    progress = exported.stdout.splitlines()
    for role in ("speech_encoder", "text_decoder_cross", "text_decoder", "t2u", "vocoder"):
        assert any(line.startswith(f"{role}: exported in") for line in progress)
    load_bundle(tmp_path / "bundle")
