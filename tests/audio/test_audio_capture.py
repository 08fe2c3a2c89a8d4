"""Capture on the virtual microphone: rates, resampling, overflow, echo guard."""

from __future__ import annotations

import numpy as np
import pytest
import sounddevice as sd
from audio_helpers import MODEL_RATE, best_match, chirp, collect, rms, wait_until
from seamless_daemon.audio.capture import Capture, CaptureSettings
from seamless_daemon.audio.devices import AudioDeviceError, StreamState
from seamless_daemon.audio.playback import Player, PlayerSettings

pytestmark = pytest.mark.audio

SIGNAL_S = 1.0
MIN_R = 0.9
SILENCE_RMS = 0.01
SETTLE_READ_S = 0.3


@pytest.mark.parametrize("rate", [48000, 44100])
def test_loopback_at_device_rate_correlates_at_16k(virtual_audio: object, rate: int) -> None:
    cap = Capture(CaptureSettings(device="virt_mic", samplerate=rate))
    cap.start()
    try:
        assert cap.device_rate == rate
        cap.read(timeout=SETTLE_READ_S)
        sig = chirp(SIGNAL_S)
        sd.play(sig, MODEL_RATE, device="virt_mic_feed", blocking=True)
        got = collect(lambda t: cap.read(timeout=t), int(1.5 * sig.size))
        assert got.dtype == np.float32 and got.ndim == 1
        match = best_match(got, sig)
        assert match.r > MIN_R, match
        stats = cap.stats()
        assert stats.state == StreamState.RUNNING and stats.device == "virt_mic"
        assert stats.dropped_samples == 0
    finally:
        cap.close()
    assert cap.stats().state == StreamState.CLOSED


def test_default_rate_is_the_devices(virtual_audio: object) -> None:
    cap = Capture(CaptureSettings(device="virt_mic"))
    cap.start()
    try:
        assert cap.device_rate == round(sd.query_devices("virt_mic")["default_samplerate"])
    finally:
        cap.close()


def test_unread_capture_drops_oldest_and_counts(virtual_audio: object) -> None:
    cap = Capture(CaptureSettings(device="virt_mic", samplerate=48000, queue_s=0.05))
    cap.start()
    try:
        assert wait_until(lambda: cap.stats().dropped_samples > 0), cap.stats()
        assert cap.stats().queued_samples == int(0.05 * 48000)
    finally:
        cap.close()


def test_unknown_device_names_the_key(virtual_audio: object) -> None:
    cap = Capture(CaptureSettings(device="usb mic", config_key="audio.input_device"))
    with pytest.raises(AudioDeviceError, match=r'^audio\.input_device: no input device named "usb mic"'):
        cap.start()


def _echo_rig(guarded: bool) -> tuple[Capture, Player]:
    """Capture on virt_mic and play into virt_mic_feed: the microphone hears the speaker."""
    cap = Capture(CaptureSettings(device="virt_mic", samplerate=48000, echo_tail_ms=100))
    cap.start()

    def gate(open_: bool) -> None:
        if guarded:
            cap.enabled = open_

    player = Player(
        PlayerSettings(device="virt_mic_feed"),
        on_start=lambda u: gate(False),
        on_end=lambda u: gate(True),
    )
    player.start()
    return cap, player


@pytest.mark.parametrize("guarded", [True, False])
def test_echo_guard_discards_audio_while_playing(virtual_audio: object, guarded: bool) -> None:
    cap, player = _echo_rig(guarded)
    try:
        cap.read(timeout=SETTLE_READ_S)
        sig = chirp(SIGNAL_S)
        player.play(sig)
        assert player.wait_idle(10)
        got = collect(lambda t: cap.read(timeout=t), int(1.5 * sig.size))
        if guarded:
            assert rms(got) < SILENCE_RMS
            assert cap.stats().gated_samples >= sig.size
            assert cap.enabled
        else:
            assert best_match(got, sig).r > MIN_R
            assert cap.stats().gated_samples == 0
    finally:
        player.close()
        cap.close()
