"""Streaming mode end to end: the real daemon on the virtual sound devices, espeak-ng speech played into the
microphone, events over the real control socket, seamlessctl for every command."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
import yaml
from harness import DaemonProcess, write_config
from seamless_daemon.control.client import ControlClient, ControlClientError

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from make_speech import Recording, make_recording  # noqa: E402 - the bench folder is put on the path above

MODEL_RATE = 16000
FEED_RATE = 48000
EVENT_TIMEOUT_S = 60.0
POLL_S = 0.05
SPEECH_SENTENCES = 5  # about 20 s with the pauses
SPEECH_SEED = 3
SINGLE_SEED = 19  # one 3.2 s sentence
WATCHDOG_USEC = 2_000_000
MIN_SPEAKER_RMS = 1e-3  # the speaker monitor is digital silence when nothing plays
MIN_WATCHDOG_PINGS = 2
INTERRUPT_AFTER_S = 1.0  # into an utterance, the moment a stop/switch/swap is sent
PRE_ROLL_S = 0.3  # streaming.segmenter.pre_roll_s default: an utterance starts this long before its onset
PLACEMENT_TOLERANCE_S = 0.3  # echo-guard silence is placed to within one capture read (longer during a step)

pytestmark = pytest.mark.audio


def _ctl(sock: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seamless_daemon.control.ctl", "--socket", str(sock), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _status(sock: Path) -> dict[str, Any]:
    result = _ctl(sock, "--json", "status")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Events:
    """Every event of a real subscription, with its arrival time."""

    def __init__(self, sock: Path) -> None:
        self.items: list[dict[str, Any]] = []
        self._client = ControlClient(str(sock), timeout=None)
        self._client.connect()
        if not self._client.request("subscribe", {"queue_max": 4096}).ok:
            raise AssertionError("subscribe failed")
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        try:
            for event in self._client.events():
                self.items.append({"event": event.name, "arrived": time.monotonic(), **event.fields})
        except (OSError, ControlClientError):  # the daemon closing the stream at shutdown ends the loop
            return

    def named(self, name: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in list(self.items) if e["event"] == name and all(e.get(k) == v for k, v in match.items())]

    def wait(self, name: str, count: int = 1, timeout: float = EVENT_TIMEOUT_S, **match: Any) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.named(name, **match)
            if len(found) >= count:
                return found
            time.sleep(POLL_S)
        raise AssertionError(f"fewer than {count} {name!r} events {match}; got {[e['event'] for e in self.items]}")

    def close(self) -> None:
        self._client.close()


def _config(tmp: Path, bundle: Path, mode: str = "streaming", policy: str = "agreement", **audio: Any) -> Path:
    data = {
        "bundle": str(bundle),
        "mode": mode,
        "translation": {"source_lang": "eng", "target_lang": "fra"},
        "runtime": {"intra_op_threads": 1},
        # The virtual speaker does not reach the virtual microphone: no echo to guard against.
        "audio": {"input_device": "virt_mic", "output_device": "virt_speaker", "echo_guard": False, **audio},
        "control": {"socket": str(tmp / "ctl.sock")},
        "logging": {"level": "debug"},
        "streaming": {"policy": policy},
    }
    return write_config(tmp / "config.yaml", data)


def _play(audio_16k: np.ndarray) -> None:
    """Start speaking into the virtual microphone (returns at once)."""
    import sounddevice as sd

    feed = soxr.resample(audio_16k, MODEL_RATE, FEED_RATE).astype(np.float32)
    sd.play(feed, FEED_RATE, device="virt_mic_feed", blocking=False)


def _wait_played() -> None:
    import sounddevice as sd

    sd.wait()


def _wait_quiet(sock: Path, state: str, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
    """Status once no utterance is open or waiting to be spoken and the state is ``state``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = _status(sock)
        quiet = status["streaming"]["open_utterances"] == 0 and not status["streaming"]["utterance_open"]
        if quiet and status["state"] == state:
            return status
        time.sleep(POLL_S * 4)
    raise AssertionError(f"daemon never settled in {state!r}: {status['state']}, {status['streaming']}")


def _check_commits(events: Events, utterance: int) -> list[int]:
    """Commits of one utterance follow each other without overlap and add up to its text; returns the tokens."""
    commits = events.named("commit", utterance=utterance)
    position, tokens = 0, []
    for commit in commits:
        assert commit["start_index"] == position, f"utterance {utterance}: commit overlaps or skips: {commits}"
        assert commit["end_index"] == position + len(commit["token_ids"])
        position = commit["end_index"]
        tokens.extend(commit["token_ids"])
    end = events.named("utterance_end", utterance=utterance)[0]
    assert tokens == end["token_ids"], f"utterance {utterance}: commits {tokens} != utterance_end {end['token_ids']}"
    return tokens


def _spoken_once(events: Events, utterance: int) -> None:
    """The pieces played for an utterance cover disjoint token ranges."""
    pieces = sorted((e["start_index"], e["end_index"]) for e in events.named("playback_start", utterance=utterance))
    for (_, end), (start, _) in zip(pieces, pieces[1:]):
        assert start >= end, f"utterance {utterance}: tokens spoken twice: {pieces}"


@pytest.fixture(scope="module")
def speech() -> Recording:
    return make_recording(SPEECH_SENTENCES, SPEECH_SEED)


@pytest.fixture(scope="module")
def sentence() -> Recording:
    return make_recording(1, SINGLE_SEED)


class SpeakerMonitor:
    """Records what the virtual speaker plays."""

    def __init__(self) -> None:
        import sounddevice as sd

        self.blocks: list[np.ndarray] = []
        self._stream = sd.InputStream(device="virt_speaker_monitor", samplerate=MODEL_RATE, channels=1,
                                      dtype="float32", callback=lambda data, *_: self.blocks.append(data[:, 0].copy()))
        self._stream.start()

    def rms(self) -> float:
        heard = np.concatenate(self.blocks) if self.blocks else np.zeros(1, np.float32)
        return float(np.sqrt(np.mean(heard**2)))

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


def test_agreement_translates_while_the_speaker_talks(virtual_audio: Any, toy_bundle: Path, speech: Recording,
                                                       tmp_path: Path) -> None:
    daemon = DaemonProcess(_config(tmp_path, toy_bundle), tmp_path, watchdog_usec=WATCHDOG_USEC)
    daemon.start()  # `mode: streaming` in the config: streaming from start-up
    sock = tmp_path / "ctl.sock"
    events = Events(sock)
    monitor = SpeakerMonitor()
    try:
        status = _status(sock)
        assert status["state"] == "streaming" and status["mode"] == "streaming"
        assert status["policy"] == "agreement" and status["streaming"]["active"] is True
        idle_pings = daemon.notify.count("WATCHDOG=1")
        assert daemon.notify.wait_for("WATCHDOG=1", WATCHDOG_USEC / 1e6)
        refused = _ctl(sock, "record", "start")
        assert refused.returncode == 3 and "streaming is on" in refused.stderr

        began = time.monotonic()
        _play(speech.audio)
        last_sentence_end = began + speech.sentences[-1].end / MODEL_RATE
        _wait_played()
        ends = events.wait("utterance_end", len(speech.sentences))
        status = _wait_quiet(sock, "streaming")
        pings_while_streaming = daemon.notify.count("WATCHDOG=1") - idle_pings
    finally:
        monitor.close()
        events.close()
        code = daemon.stop()
    assert code == 0, daemon.stderr()
    assert pings_while_streaming >= MIN_WATCHDOG_PINGS

    starts = events.named("utterance_start")
    assert len(starts) == len(ends) == len(speech.sentences), [e["text"] for e in ends]
    assert all(end["text"] and not end["failed"] for end in ends)
    first_out = events.named("playback_start")[0]["arrived"]
    assert first_out < last_sentence_end, "no translated speech was played before the last sentence ended"
    assert any(not c["final"] for c in events.named("commit")), "nothing was committed before an utterance ended"
    for end in ends:
        assert _check_commits(events, end["utterance"])
        _spoken_once(events, end["utterance"])
        assert events.named("playback_end", utterance=end["utterance"])
        assert end["start_offset_s"] is not None and end["end_offset_s"] is not None and end["rtf"] > 0
    assert monitor.rms() > MIN_SPEAKER_RMS

    figures = status["streaming"]
    assert figures["utterances"] == len(speech.sentences)
    assert figures["last"]["utterance"] == ends[-1]["utterance"]
    assert figures["median"]["start_offset_s"] is not None and figures["median"]["rtf"] is not None
    assert figures["dropped_audio_s"] == 0 and status["audio"]["input"]["dropped_samples"] == 0
    print("\nagreement:", json.dumps({k: figures[k] for k in ("median", "last", "skipped_steps", "dropped_audio_s")}))


def test_overlap_keeps_the_seed_cadence(virtual_audio: Any, toy_bundle: Path, speech: Recording,
                                        tmp_path: Path) -> None:
    daemon = DaemonProcess(_config(tmp_path, toy_bundle, mode="complete"), tmp_path)
    daemon.start()
    sock = tmp_path / "ctl.sock"
    events = Events(sock)
    try:
        assert _status(sock)["state"] == "idle"
        switched = _ctl(sock, "--json", "set", "--mode", "streaming", "--policy", "overlap")
        assert switched.returncode == 0, switched.stderr
        assert json.loads(switched.stdout)["state"] == "streaming"
        audio = speech.audio[: speech.sentences[2].end]
        _play(audio)
        _wait_played()
        chunks = events.wait("utterance_start", int(audio.size / MODEL_RATE / 1.5))
        stopped = _ctl(sock, "--json", "stream", "stop")
        assert stopped.returncode == 0, stopped.stderr
        status = _wait_quiet(sock, "idle")
        reloads = _reload_switches(sock, tmp_path, toy_bundle)
    finally:
        events.close()
        code = daemon.stop()
    assert code == 0, daemon.stderr()
    assert status["mode"] == "complete" and status["streaming"]["active"] is False
    assert [(r["state"], r["policy"], r["streaming"]["active"]) for r in reloads] == [
        ("streaming", "vad", True), ("idle", "vad", False)]

    chunks = events.named("utterance_start")
    hops = np.diff([chunk["start_s"] for chunk in chunks])
    assert np.allclose(hops, 1.5, atol=1e-3), f"chunks do not start every chunk_s - overlap_s: {hops}"
    commits = events.named("commit")
    assert len(commits) >= 2
    for commit in commits:
        assert commit["start_index"] == 0 and commit["final"]
    for commit in commits[:-1]:
        assert commit["source_end_s"] - commit["source_start_s"] == pytest.approx(2.0, abs=1e-3)
    gaps = np.diff([commit["at_s"] for commit in commits])
    assert np.all(gaps >= 0.5 - 1e-3), f"outputs closer than min_output_gap_s: {gaps}"
    assert len(events.named("utterance_end")) == len(chunks)


def _reload_switches(sock: Path, tmp: Path, bundle: Path) -> list[dict[str, Any]]:
    """Reload with streaming knobs: a bad knob is refused naming its key path, `mode: streaming` starts the
    stream with the file's policy, `mode: complete` stops it. Returns the status after each good reload."""
    bad = yaml.safe_load(_config(tmp, bundle, policy="vad").read_text())
    bad["streaming"]["overlap"] = {"overlap_s": 5.0}
    write_config(tmp / "config.yaml", bad)
    refused = _ctl(sock, "reload")
    assert refused.returncode == 3 and "streaming.overlap.overlap_s" in refused.stderr, refused.stderr
    seen = []
    for mode in ("streaming", "complete"):
        _config(tmp, bundle, mode=mode, policy="vad")
        assert _ctl(sock, "reload").returncode == 0
        seen.append(_status(sock))
    return seen


def _interrupt(sock: Path, events: Events, sentence: Recording, *command: str) -> dict[str, Any]:
    """Speak one sentence; once its utterance has started and gone on a while, send ``command``. Returns the
    interrupted utterance's utterance_end."""
    known = {e["utterance"] for e in events.named("utterance_start")}
    _play(sentence.audio)
    end = time.monotonic() + EVENT_TIMEOUT_S
    while not [e for e in events.named("utterance_start") if e["utterance"] not in known]:
        assert time.monotonic() < end, "the sentence never started an utterance"
        time.sleep(POLL_S)
    started = [e for e in events.named("utterance_start") if e["utterance"] not in known][0]
    time.sleep(INTERRUPT_AFTER_S)
    result = _ctl(sock, *command)
    assert result.returncode == 0, result.stderr
    _wait_played()
    return events.wait("utterance_end", utterance=started["utterance"])[0]


def test_stop_switch_and_swap_mid_utterance_lose_nothing(virtual_audio: Any, toy_bundle: Path,
                                                          sentence: Recording, tmp_path: Path) -> None:
    daemon = DaemonProcess(_config(tmp_path, toy_bundle), tmp_path)
    daemon.start()
    sock = tmp_path / "ctl.sock"
    events = Events(sock)
    try:
        swapped = _interrupt(sock, events, sentence, "swap")
        after_swap = _wait_quiet(sock, "streaming")

        stopped = _interrupt(sock, events, sentence, "stream", "stop")
        after_stop = _wait_quiet(sock, "idle")
        assert _ctl(sock, "record", "start").returncode == 0
        refused = _ctl(sock, "stream", "start")
        assert refused.returncode == 3 and "recording" in refused.stderr
        assert _ctl(sock, "record", "cancel").returncode == 0

        assert _ctl(sock, "set", "--mode", "streaming", "--target-lang", "spa").returncode == 0
        switched = _interrupt(sock, events, sentence, "set", "--mode", "complete")
        after_switch = _wait_quiet(sock, "idle")

        assert _ctl(sock, "stream", "start").returncode == 0
        known = len(events.named("utterance_end"))
        _play(sentence.audio)
        _wait_played()
        normal = events.wait("utterance_end", known + 1)[-1]
        after_normal = _wait_quiet(sock, "streaming")
    finally:
        events.close()
        code = daemon.stop()
    assert code == 0, daemon.stderr()

    assert swapped["target_lang"] == "fra" and after_swap["target_lang"] == "eng"
    assert stopped["target_lang"] == "eng" and after_stop["mode"] == "complete"
    assert switched["target_lang"] == "spa" and after_switch["mode"] == "complete"
    for end in (swapped, stopped, switched, normal):
        assert end["token_ids"] and not end["failed"], end
        assert _check_commits(events, end["utterance"])
        assert events.named("playback_end", utterance=end["utterance"]), f"utterance {end['utterance']} not spoken"
        _spoken_once(events, end["utterance"])
    # The interrupted utterances were cut where the command came; the normal one heard the whole sentence.
    spoken_s = sentence.sentences[0].duration_s
    for end in (swapped, stopped, switched):
        assert end["audio_s"] < spoken_s, f"utterance {end['utterance']} was not interrupted: {end}"
    assert normal["audio_s"] >= spoken_s
    # After the swap, the rest of the sentence was translated into the new target straight away.
    assert events.named("utterance_start", utterance=swapped["utterance"] + 1, target_lang="eng")
    assert after_normal["streaming"]["active"] and after_normal["target_lang"] == "spa"


def test_echo_guard_hears_silence_while_the_translation_plays(virtual_audio: Any, toy_bundle: Path,
                                                              speech: Recording, tmp_path: Path) -> None:
    daemon = DaemonProcess(_config(tmp_path, toy_bundle, echo_guard=True), tmp_path)
    daemon.start()
    sock = tmp_path / "ctl.sock"
    events = Events(sock)
    try:
        _play(speech.audio)
        _wait_played()
        events.wait("utterance_end")
        status = _wait_quiet(sock, "streaming")
    finally:
        events.close()
        code = daemon.stop()
    assert code == 0, daemon.stderr()

    assert status["streaming"]["echo_guarded_s"] > 0 and status["audio"]["input"]["echo_guarded_samples"] > 0
    windows = list(zip([e["at_s"] for e in events.named("playback_start")],
                       [e["at_s"] for e in events.named("playback_end")]))
    assert windows, "nothing was played"
    # Speech onsets (utterance start + pre-roll) never fall inside a playback: the microphone heard silence there.
    onsets = [e["start_s"] + PRE_ROLL_S for e in events.named("utterance_start")]
    inside = [(onset, window) for onset in onsets for window in windows
              if window[0] + PLACEMENT_TOLERANCE_S < onset < window[1] - PLACEMENT_TOLERANCE_S]
    assert not inside, f"speech heard during playback was translated: {inside}"
    for end in events.named("utterance_end"):
        assert _check_commits(events, end["utterance"]) and not end["failed"]
