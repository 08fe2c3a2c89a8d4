"""Device loss: the sound server is killed under live streams, then comes back."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import sounddevice as sd
from audio_helpers import MODEL_RATE, best_match, chirp, collect, wait_until
from seamless_daemon.audio.capture import Capture, CaptureSettings
from seamless_daemon.audio.devices import StreamState
from seamless_daemon.audio.playback import Player, PlayerSettings

pytestmark = pytest.mark.audio

RECOVER_S = 30.0
MIN_R = 0.9


def test_streams_report_loss_and_reopen_after_the_server_returns(virtual_audio) -> None:
    errors: list[str] = []
    cap_back, player_back = threading.Event(), threading.Event()
    fast = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5}
    cap = Capture(CaptureSettings(device="virt_mic", samplerate=48000, **fast), on_error=errors.append,
                  on_recovered=cap_back.set)
    player = Player(PlayerSettings(device="virt_speaker", **fast), on_error=errors.append,
                    on_recovered=player_back.set)
    cap.start()
    player.start()
    try:
        os.kill(virtual_audio.server_pid(), signal.SIGKILL)
        assert wait_until(lambda: cap.stats().state == StreamState.LOST, RECOVER_S), cap.stats()
        assert wait_until(lambda: player.stats().state == StreamState.LOST, RECOVER_S), player.stats()
        assert any(e.startswith("capture[virt_mic]: device lost") for e in errors), errors
        assert any(e.startswith("playback[virt_speaker]: device lost") for e in errors), errors
        assert all("\n" not in e for e in errors)
        # while the server is gone, reopen attempts keep failing and are reported
        assert wait_until(lambda: any("reopen attempt" in e for e in errors), RECOVER_S), errors
    finally:
        virtual_audio.start()
    assert cap_back.wait(RECOVER_S) and player_back.wait(RECOVER_S)
    try:
        for stats in (cap.stats(), player.stats()):
            assert stats.state == StreamState.RUNNING
            assert stats.losses == 1 and stats.reopens == 1
        # the reopened capture really delivers again
        cap.discard()
        cap.read(timeout=0.3)
        sig = chirp(1.0)
        sd.play(sig, MODEL_RATE, device="virt_mic_feed", blocking=True)
        got = collect(lambda t: cap.read(timeout=t), int(1.5 * sig.size))
        assert best_match(got, sig).r > MIN_R
    finally:
        player.close()
        cap.close()
