"""seamlessctl as a real subprocess against a real server running in the test process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
from control_fakes import WAIT_S, FakeControl, wait_until, wav_file_bytes
from seamless_daemon.config import ControlConfig
from seamless_daemon.control.server import ControlServer

SCRIPT = Path(sys.executable).parent / "seamlessctl"


def ctl_command(*args: str) -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-m", "seamless_daemon.control.ctl", *args]


def ctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ctl_command(*args), check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_status_human_and_json(server: ControlServer, settings: ControlConfig) -> None:
    human = ctl("--socket", settings.socket, "status")
    assert human.returncode == 0, human.stderr
    assert "state: idle" in human.stdout.splitlines() and "target_lang: fra" in human.stdout.splitlines()
    as_json = ctl("--socket", settings.socket, "--json", "status")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["source_lang"] == "eng"


def test_socket_from_environment(server: ControlServer, settings: ControlConfig) -> None:
    result = ctl("ping", env={"SEAMLESS_CONTROL_SOCKET": settings.socket})
    assert result.returncode == 0 and "pong: true" in result.stdout


def test_daemon_not_running_exits_4(sock_dir: Path) -> None:
    for path in (sock_dir / "absent.sock", sock_dir / "dead.sock"):
        if path.name == "dead.sock":  # a socket file with nobody listening
            dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            dead.bind(str(path))
            dead.close()
        result = ctl("--socket", str(path), "status")
        assert result.returncode == 4
        assert result.stderr.count("\n") == 1 and "daemon not running" in result.stderr
        assert str(path) in result.stderr


def test_refused_exits_3(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    control.refuse.add("record_start")
    result = ctl("--socket", settings.socket, "record", "start")
    assert result.returncode == 3
    assert result.stderr == "seamlessctl: refused: record: record_start refused in state idle\n"


def test_bad_request_exits_2(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    result = ctl("--socket", settings.socket, "set", "--speaker", "-1")
    assert result.returncode == 2
    assert result.stderr.startswith("seamlessctl: bad_request: ") and '"speaker"' in result.stderr
    assert control.calls == []
    usage = ctl("--socket", settings.socket, "record", "pause")
    assert usage.returncode == 2


def test_json_error_output(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    control.crash.add("reload")
    result = ctl("--socket", settings.socket, "--json", "reload")
    assert result.returncode == 5
    assert json.loads(result.stdout)["error"]["code"] == "internal"


def test_set_and_swap(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    result = ctl("--socket", settings.socket, "set", "--target-lang", "deu", "--mode", "streaming")
    assert result.returncode == 0, result.stderr
    assert control.options["target_lang"] == "deu" and control.options["mode"] == "streaming"
    assert ctl("--socket", settings.socket, "swap").returncode == 0
    assert control.options["source_lang"] == "deu"


def test_stream_start_stop_and_policy(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    started = ctl("--socket", settings.socket, "--json", "stream", "start")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["state"] == "streaming"
    assert ctl("--socket", settings.socket, "set", "--policy", "vad").returncode == 0
    assert control.options["policy"] == "vad"
    assert ctl("--socket", settings.socket, "stream", "stop").returncode == 0
    assert control.options["mode"] == "complete"
    control.refuse.add("stream_start")
    refused = ctl("--socket", settings.socket, "stream", "start")
    assert refused.returncode == 3 and "stream_start refused" in refused.stderr
    assert ctl("--socket", settings.socket, "set", "--policy", "eager").returncode == 2


def test_translate_writes_a_16k_wav(server: ControlServer, settings: ControlConfig, control: FakeControl,
                                    tmp_path: Path) -> None:
    samples = (np.sin(np.arange(24000) / 7) * 0.3).astype(np.float32)
    source = tmp_path / "in.wav"
    source.write_bytes(wav_file_bytes(samples, 48000))
    target = tmp_path / "out.wav"
    result = ctl("--socket", settings.socket, "--json", "translate", str(source), "-o", str(target),
                 "--tgt-lang", "spa", "--speaker", "2")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["text"] == "bonjour" and printed["output"] == str(target) and "audio_b64" not in printed
    assert control.calls[-1][1] == {"n": 24000, "rate": 48000, "dtype": "float32", "target_lang": "spa",
                                    "speaker": 2}
    written, rate = soundfile.read(target, dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(written, samples[::-1], atol=3 / 32767)


def test_translate_missing_input_is_a_usage_error(settings: ControlConfig, tmp_path: Path) -> None:
    result = ctl("--socket", settings.socket, "translate", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.wav"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_subscribe_prints_events(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    child = subprocess.Popen(ctl_command("--socket", settings.socket, "--json", "subscribe"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: control.bus.subscriber_count == 1, "seamlessctl to subscribe")
        control.bus.publish("state", state="recording")
        control.bus.publish("error", message="microphone lost")
        assert child.stdout is not None
        assert json.loads(child.stdout.readline()) == {"event": "state", "state": "recording"}
        assert json.loads(child.stdout.readline()) == {"event": "error", "message": "microphone lost"}
        child.send_signal(signal.SIGINT)
        assert child.wait(WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    wait_until(lambda: control.bus.subscriber_count == 0, "the subscription to close")


def test_help_documents_exit_codes() -> None:
    result = ctl("--help")
    assert result.returncode == 0
    for line in ("0  success", "2  bad request", "3  refused", "4  daemon not running", "5  internal"):
        assert line in result.stdout
