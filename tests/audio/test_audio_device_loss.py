"""Device loss: the sound server is killed under live streams, then comes back (in a child process, see
device_loss_child.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.audio

CHILD = Path(__file__).with_name("device_loss_child.py")
TESTS_DIR = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 240
MIN_R = 0.9
TAIL_BYTES = 2000


def test_streams_report_loss_and_reopen_after_the_server_returns(virtual_audio, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    stderr_path = tmp_path / "child.stderr"  # a wedged PortAudio thread can print millions of lines
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.run([sys.executable, str(CHILD), str(virtual_audio.script), str(virtual_audio.pid_file)],
                              check=False, stdout=subprocess.PIPE, stderr=stderr, text=True,
                              timeout=CHILD_TIMEOUT_S, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    with open(stderr_path, "rb") as stderr:
        stderr.seek(max(0, stderr_path.stat().st_size - TAIL_BYTES))
        tail = stderr.read().decode(errors="replace")
    assert lines, f"child failed ({proc.returncode}): {tail}"
    result = json.loads(lines[-1])
    errors = result["errors"]
    assert result["capture_lost"] and result["player_lost"], result
    assert any(e.startswith("capture[virt_mic]: device lost") for e in errors), errors
    assert any(e.startswith("playback[virt_speaker]: device lost") for e in errors), errors
    assert all("\n" not in e for e in errors)
    assert result["reopen_reported"], errors  # while the server is gone, reopen attempts fail and are reported
    assert result["recovered"], result
    for stats in (result["capture"], result["player"]):
        assert stats["state"] == "running"
        assert stats["losses"] == 1 and stats["reopens"] == 1
    assert result["r"] > MIN_R  # the reopened capture really delivers again
