"""Player on the virtual speaker, recorded from its monitor."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from audio_helpers import best_match, chirp, collect
from seamless_daemon.audio.capture import Capture, CaptureSettings
from seamless_daemon.audio.playback import Player, PlayerSettings, Utterance

pytestmark = pytest.mark.audio

MIN_R = 0.9
IDLE_S = 15.0


@pytest.fixture
def monitor(virtual_audio: object):
    cap = Capture(CaptureSettings(device="virt_speaker_monitor", samplerate=48000))
    cap.start()
    cap.read(timeout=0.3)
    yield cap
    cap.close()


def test_played_speech_reaches_the_speaker(monitor: Capture) -> None:
    events: list[tuple[str, int]] = []
    player = Player(
        PlayerSettings(device="virt_speaker"),
        on_start=lambda u: events.append(("start", u.id)),
        on_end=lambda u: events.append(("end", u.id)),
    )
    player.start()
    try:
        assert player.device_rate == 44100  # the pulse plugin's default: 16 kHz is up-sampled
        sig = chirp(1.0)
        first = player.play(sig, tag="hello")
        second = player.play(sig * 0.5)
        assert isinstance(first, Utterance) and first.tag == "hello" and first.duration_s == 1.0
        assert player.is_playing  # play() returned while the audio is still to be played
        assert player.wait_idle(IDLE_S)
        assert not player.is_playing
        assert events == [("start", first.id), ("end", first.id), ("start", second.id), ("end", second.id)]
        got = collect(lambda t: monitor.read(timeout=t), 3 * sig.size)
        assert best_match(got, sig).r > MIN_R
        assert player.stats().played == 2
    finally:
        player.close()


def test_full_queue_drops_oldest_waiting_utterance(virtual_audio: object) -> None:
    started: list[int] = []
    release = threading.Event()
    player = Player(
        PlayerSettings(device="virt_speaker", max_queued=1),
        on_start=lambda u: (started.append(u.id), release.wait(IDLE_S)),
    )
    player.start()
    try:
        short = np.zeros(1600, dtype=np.float32)
        a = player.play(short)
        # the feeder holds `a` inside on_start: b and c compete for the single queue slot
        while not started:
            release.wait(0.01)
        b = player.play(short)
        c = player.play(short)
        release.set()
        assert player.wait_idle(IDLE_S)
        assert started == [a.id, c.id]
        assert player.stats().dropped_utterances == 1
        assert b.id not in started
    finally:
        release.set()
        player.close()


def test_cancel_cuts_playback(virtual_audio: object) -> None:
    started = threading.Event()
    ended: list[int] = []
    player = Player(
        PlayerSettings(device="virt_speaker"),
        on_start=lambda u: started.set(),
        on_end=lambda u: ended.append(u.id),
    )
    player.start()
    try:
        playing = player.play(chirp(30.0))
        waiting = player.play(chirp(30.0))
        assert started.wait(IDLE_S)
        player.cancel()
        assert player.wait_idle(IDLE_S)  # a minute of audio was queued
        assert ended == [playing.id]  # on_end still fires for the cut one (it releases the echo guard)
        assert waiting.id not in ended
        assert player.stats().cancelled == 2
    finally:
        player.close()


def test_bad_buffers_are_rejected(virtual_audio: object) -> None:
    player = Player(PlayerSettings(device="virt_speaker", max_utterance_s=1.0))
    player.start()
    try:
        with pytest.raises(ValueError, match=r"^play: expected a 1-D float array, got shape \(2, 3\)"):
            player.play(np.zeros((2, 3), dtype=np.float32))
        with pytest.raises(ValueError, match="dtype int16"):
            player.play(np.zeros(10, dtype=np.int16))
        with pytest.raises(ValueError, match="exceeds max_utterance_s"):
            player.play(np.zeros(16001, dtype=np.float32))
    finally:
        player.close()
    with pytest.raises(RuntimeError, match="not running"):
        player.play(np.zeros(10, dtype=np.float32))
