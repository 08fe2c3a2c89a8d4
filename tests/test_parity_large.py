"""The released model's widths and tables (256,102-token vocabulary, 10,082 units, 200 speakers) with one layer per
stack: the export keeps a graph's weights in one checksummed ``.onnx.data`` file, stores the tied embedding once,
and ``seamless-daemon translate`` reproduces generate() as in test_parity.

At one layer per stack no graph passes protobuf's 2 GB (the decoder is the 1.05 GB table and one layer), so the
export is told to move graphs above 512 MiB to external data: the same code path a full-size export takes.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from seamless_daemon.bundle import load_bundle
from test_parity import Case, _load_reference, _tones, check_case

pytest.importorskip("torch")

LAYERS = 1
EXTERNAL_DATA_BYTES = 512 * 1024**2
VOCABULARY = 256_102
CHECKPOINT_TIMEOUT_S = 900
CASES = (Case("large-l1-2s-fra", _tones(2.0, 0), "fra", 3, 6),
         Case("large-l1-3s-odd-spa", _tones(3.0, 1, 160), "spa", 199, 4),
         Case("large-l1-1s-ben", _tones(1.0, 2), "ben", 0, 3))


@pytest.fixture(scope="module")
def large_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / f"large-l{LAYERS}"
    command = [sys.executable, "-m", "seamless_export.cli", "random-checkpoint", str(path), "--preset", "large",
               "--layers", str(LAYERS), "--layout", "speech-to-speech"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=CHECKPOINT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def large_bundle(large_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seamless_export.exporter import ExportOptions, export_bundle

    bundle = tmp_path_factory.mktemp("large-bundle") / "bundle"
    export_bundle(str(large_checkpoint), bundle, ExportOptions(external_data_bytes=EXTERNAL_DATA_BYTES))
    return bundle


def test_large_graphs_keep_one_data_file_and_one_embedding(large_bundle: Path) -> None:
    manifest = load_bundle(large_bundle).manifest  # checksums every file, confines every external-data path
    assert manifest.decoder.vocab_size == VOCABULARY
    decoder = manifest.graphs["text_decoder"]
    assert decoder.external_data == ("text_decoder.onnx.data",)
    assert "text_decoder.onnx.data" in manifest.files
    data_mode = (large_bundle / "text_decoder.onnx.data").stat().st_mode
    assert data_mode & stat.S_IROTH, "the daemon's own user could not read a bundle installed by root"
    files = sorted(path.name for path in large_bundle.iterdir())
    assert [name for name in files if name.endswith(".data")] == [
        f"{spec.path}.data" for spec in manifest.graphs.values() if spec.external_data]
    graph = onnx.load(str(large_bundle / decoder.path), load_external_data=False)
    tables = [init.name for init in graph.graph.initializer if VOCABULARY in tuple(init.dims)]
    assert len(tables) == 1
    data_bytes = (large_bundle / "text_decoder.onnx.data").stat().st_size
    assert data_bytes < 2 * VOCABULARY * manifest.decoder.hidden_size * 4, "the tied table is stored twice"


def test_large_bundle_matches_generate(large_bundle: Path, large_checkpoint: Path, tmp_path: Path) -> None:
    model, extractor = _load_reference(large_checkpoint)
    eos = model.generation_config.eos_token_id
    for case in CASES:
        check_case(large_bundle, model, extractor, case, tmp_path, eos)
