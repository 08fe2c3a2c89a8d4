"""The daemon's bundle loader refuses damaged real bundles with a one-line error naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from seamless_daemon.bundle import MANIFEST_NAME, BundleError, load_bundle, sha256_file


@pytest.fixture
def bundle(tiny_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    return copy


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST_NAME).read_text())


def _write_manifest(bundle: Path, data: dict) -> None:
    (bundle / MANIFEST_NAME).write_text(json.dumps(data))


def _one_line_error(bundle: Path) -> str:
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_intact_copy_loads(bundle: Path) -> None:
    assert load_bundle(bundle).manifest.precision == "fp32"


def test_missing_file_is_named(bundle: Path) -> None:
    (bundle / "t2u.onnx").unlink()
    message = _one_line_error(bundle)
    assert "t2u.onnx" in message and "missing" in message


def test_checksum_mismatch_is_named(bundle: Path) -> None:
    with open(bundle / "vocoder.onnx", "ab") as handle:
        handle.write(b"\0")
    message = _one_line_error(bundle)
    assert "vocoder.onnx" in message and "checksum mismatch" in message


def test_unknown_format_version_is_named(bundle: Path) -> None:
    data = _manifest(bundle)
    data["format_version"] = 99
    _write_manifest(bundle, data)
    message = _one_line_error(bundle)
    assert MANIFEST_NAME in message and "99" in message


def test_external_data_escaping_the_bundle_is_refused(bundle: Path) -> None:
    graph_path = bundle / "vocoder.onnx"
    model = onnx.load(str(graph_path))
    onnx.save_model(
        model,
        str(graph_path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="vocoder.onnx.data",
        size_threshold=0,
    )
    shutil.move(bundle / "vocoder.onnx.data", bundle.parent / "vocoder.onnx.data")
    model = onnx.load(str(graph_path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../vocoder.onnx.data"
    onnx.save_model(model, str(graph_path))
    data = _manifest(bundle)
    data["files"]["vocoder.onnx"] = sha256_file(graph_path)
    _write_manifest(bundle, data)
    message = _one_line_error(bundle)
    assert "vocoder.onnx" in message and "outside the bundle" in message
