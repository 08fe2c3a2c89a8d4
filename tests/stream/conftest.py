"""Shared fixtures of the streaming tests: the toy bundle's runtime pieces and espeak-ng recordings."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from seamless_daemon.bundle import load_bundle
from seamless_daemon.runtime.incremental import IncrementalTranslator
from seamless_daemon.runtime.model import MODEL_ROLES
from seamless_daemon.runtime.pipeline import Translator
from seamless_daemon.runtime.sessions import RuntimeOptions, open_sessions
from seamless_daemon.runtime.vad import VadModel
from stream_helpers import ToyRuntime

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))



@pytest.fixture(scope="session")
def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        pytest.skip("espeak-ng is not installed")
    return path


@pytest.fixture(scope="session")
def toy_runtime(toy_bundle: Path) -> ToyRuntime:
    bundle = load_bundle(toy_bundle)
    options = RuntimeOptions(intra_op_threads=2)
    sessions = open_sessions(bundle, MODEL_ROLES, options)
    return ToyRuntime(bundle, toy_bundle, Translator(bundle, options), IncrementalTranslator(bundle, sessions),
                      VadModel.open(bundle, options))
