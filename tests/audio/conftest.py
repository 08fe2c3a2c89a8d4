"""Fixtures for tests on real PortAudio devices served by a user-space PulseAudio (scripts/virtual-audio.sh)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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
        proc = subprocess.run([str(SCRIPT), "start"], check=False, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"scripts/virtual-audio.sh could not start the sound server: {exc}")
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        pytest.skip(f"scripts/virtual-audio.sh could not start the sound server: {lines[-1]}")
    _reinit_portaudio()
    yield VirtualAudio(SCRIPT, VA_DIR / "pulseaudio.pid")
    if not was_running:
        subprocess.run([str(SCRIPT), "stop"], check=False, capture_output=True)
