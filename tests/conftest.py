"""Shared, session-scoped model fixtures.

``tiny_checkpoint`` / ``tiny_bundle``: a seeded random tiny SeamlessM4T v2 checkpoint and its fp32 bundle.
``toy_checkpoint`` / ``toy_bundle``: the small trained checkpoint in tests/data/toy-s2tt and its fp32 bundle.

Set ``SEAMLESS_TEST_CACHE`` to a folder to keep these between runs; entries are keyed by a digest of the export
code, so a change there builds fresh ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from seamless_daemon.bundle import FORMAT_VERSION

CACHE_ENV = "SEAMLESS_TEST_CACHE"
TINY_SEED = 0
DATA_DIR = Path(__file__).parent / "data"
TOY_CHECKPOINT = DATA_DIR / "toy-s2tt"
EXPORT_SOURCES = Path(__file__).resolve().parents[1] / "export" / "seamless_export"
BUNDLE_SOURCE = Path(__file__).resolve().parents[1] / "daemon" / "seamless_daemon" / "bundle.py"
DIGEST_CHARS = 12


def _source_digest() -> str:
    """A digest of the export and bundle code: a cached model built by other code is never reused."""
    digest = hashlib.sha256()
    for path in sorted([*EXPORT_SOURCES.rglob("*.py"), BUNDLE_SOURCE]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:DIGEST_CHARS]


def _cached(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """Build ``name`` once: in the cache folder when set (atomically, by rename), else in pytest's tmp."""
    cache = os.environ.get(CACHE_ENV)
    if not cache:
        target = tmp_path_factory.mktemp("models") / name
        build(target)
        return target
    target = Path(cache) / f"{name}-{_source_digest()}"
    if target.is_dir():
        return target
    partial = Path(cache) / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    build(partial)
    try:
        partial.rename(target)
    except OSError:  # another run finished first
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _export(checkpoint: Path) -> Callable[[Path], None]:
    def build(target: Path) -> None:
        from seamless_export.exporter import export_bundle

        export_bundle(str(checkpoint), target)

    return build


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def build(target: Path) -> None:
        from seamless_export.checkpoint import write_random_checkpoint
        from seamless_export.presets import TINY

        write_random_checkpoint(target, TINY, seed=TINY_SEED)

    return _cached(tmp_path_factory, f"tiny-checkpoint-seed{TINY_SEED}", build)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    return _cached(tmp_path_factory, f"tiny-bundle-v{FORMAT_VERSION}-fp32", _export(tiny_checkpoint))


@pytest.fixture(scope="session")
def toy_checkpoint() -> Path:
    if not (TOY_CHECKPOINT / "model.safetensors").is_file():
        pytest.skip(f"{TOY_CHECKPOINT} is missing")
    return TOY_CHECKPOINT


@pytest.fixture(scope="session")
def toy_bundle(tmp_path_factory: pytest.TempPathFactory, toy_checkpoint: Path) -> Path:
    return _cached(tmp_path_factory, f"toy-bundle-v{FORMAT_VERSION}-fp32", _export(toy_checkpoint))


# --- real sound devices: a user-space PulseAudio server with null sinks (scripts/virtual-audio.sh) ---------
REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "virtual-audio.sh"
VA_DIR = Path(os.environ.get("VA_DIR", "/tmp/virtual-audio"))
START_TIMEOUT_S = 300  # first run may apt-get install the sound server


@dataclass(frozen=True)
class VirtualAudio:
    script: Path
    pid_file: Path

    def start(self) -> None:
        subprocess.run([str(self.script), "start"], check=True, capture_output=True, timeout=START_TIMEOUT_S)

    def server_pid(self) -> int:
        return int(self.pid_file.read_text().strip())


def _reinit_portaudio() -> None:
    """PortAudio lists devices once, at initialisation: rescan now that the ALSA PCMs exist."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


@pytest.fixture(scope="session")
def virtual_audio() -> Iterator[VirtualAudio]:
    was_running = subprocess.run([str(SCRIPT), "status"], check=False, capture_output=True).returncode == 0
    try:
        proc = subprocess.run([str(SCRIPT), "start"], check=False, capture_output=True, text=True,
                              timeout=START_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"scripts/virtual-audio.sh could not start the sound server: {exc}")
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        message = f"scripts/virtual-audio.sh could not start the sound server: {lines[-1]}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs as root and must have the devices
        pytest.skip(message)
    _reinit_portaudio()
    yield VirtualAudio(SCRIPT, VA_DIR / "pulseaudio.pid")
    if not was_running:
        subprocess.run([str(SCRIPT), "stop"], check=False, capture_output=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The device-loss tests can leave a PortAudio stream that never closes; PortAudio's teardown at exit would
    then block forever, so this process skips it (the daemon does the same after such a loss)."""
    if "sounddevice" in sys.modules:
        from seamless_daemon.audio.devices import skip_portaudio_teardown_at_exit

        skip_portaudio_teardown_at_exit()
