"""Child process of test_audio_device_loss: live streams, the sound server killed and restarted under them.

Runs in its own process because PortAudio can leave a thread spinning (and, at exit, crashing) after its server
dies; the test process must not share that fate. Prints one JSON object and leaves with os._exit.

    device_loss_child.py VIRTUAL_AUDIO_SCRIPT PID_FILE
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from typing import Any

import sounddevice as sd
from audio_helpers import MODEL_RATE, best_match, chirp, collect, wait_until
from seamless_daemon.audio.capture import Capture, CaptureSettings
from seamless_daemon.audio.devices import StreamState
from seamless_daemon.audio.playback import Player, PlayerSettings

RECOVER_S = 30.0
RESTART_TIMEOUT_S = 120
FAST = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5}


def _stats(stats: Any) -> dict[str, Any]:
    return {key: (value.value if isinstance(value, StreamState) else value) for key, value in asdict(stats).items()}


def run(script: str, pid_file: str) -> dict[str, Any]:
    errors: list[str] = []
    cap_back, player_back = threading.Event(), threading.Event()
    cap = Capture(CaptureSettings(device="virt_mic", samplerate=48000, **FAST), on_error=errors.append,
                  on_recovered=cap_back.set)
    player = Player(PlayerSettings(device="virt_speaker", **FAST), on_error=errors.append,
                    on_recovered=player_back.set)
    cap.start()
    player.start()
    result: dict[str, Any] = {}
    try:
        with open(pid_file, encoding="ascii") as handle:
            os.kill(int(handle.read().strip()), signal.SIGKILL)
        result["capture_lost"] = wait_until(lambda: cap.stats().state == StreamState.LOST, RECOVER_S)
        result["player_lost"] = wait_until(lambda: player.stats().state == StreamState.LOST, RECOVER_S)
        result["reopen_reported"] = wait_until(lambda: any("reopen attempt" in e for e in errors), RECOVER_S)
    finally:
        subprocess.run([script, "start"], check=True, capture_output=True, timeout=RESTART_TIMEOUT_S)
    result["recovered"] = cap_back.wait(RECOVER_S) and player_back.wait(RECOVER_S)
    result["capture"], result["player"] = _stats(cap.stats()), _stats(player.stats())
    cap.discard()
    cap.read(timeout=0.3)
    sig = chirp(1.0)
    sd.play(sig, MODEL_RATE, device="virt_mic_feed", blocking=True)
    got = collect(lambda t: cap.read(timeout=t), int(1.5 * sig.size))
    result["r"] = best_match(got, sig).r
    result["errors"] = errors
    return result


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2])), flush=True)
    os._exit(0)
