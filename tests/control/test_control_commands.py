"""The command table, driven directly with an in-test DaemonControl (no sockets)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from control_fakes import FakeControl, wav_file_bytes
from seamless_daemon.control.commands import CommandTable
from seamless_daemon.control.protocol import ErrorCode, Request, Response
from seamless_daemon.control.wav import decode_pcm16_b64


def run(table: CommandTable, cmd: str, args: dict[str, Any] | None = None) -> Response:
    return table.dispatch(Request(id="r", cmd=cmd, args=args or {})).response


def error_of(response: Response) -> tuple[ErrorCode, str]:
    assert not response.ok and response.error is not None
    assert response.id == "r"
    return response.error.code, response.error.message


@pytest.fixture
def table(control: FakeControl) -> CommandTable:
    return CommandTable(control, max_audio_seconds=2.0)


def test_status_ping_version(table: CommandTable, control: FakeControl) -> None:
    response = run(table, "status")
    assert response.ok and response.id == "r"
    assert response.result == {"state": "idle", **control.options}
    assert run(table, "ping").result == {"pong": True}
    version = run(table, "version").result
    assert version is not None and version["protocol"] == 1 and "translate" in version["commands"]


@pytest.mark.parametrize(("action", "method", "state"),
                         [("start", "record_start", "recording"), ("stop", "record_stop", "translating"),
                          ("cancel", "record_cancel", "idle")])
def test_record_actions_call_the_controller(table: CommandTable, control: FakeControl, action: str,
                                            method: str, state: str) -> None:
    response = run(table, "record", {"action": action})
    assert response.ok and response.result == {"state": state}
    assert control.calls[-1][0] == method


@pytest.mark.parametrize(
    ("cmd", "args", "fragment"),
    [
        ("record", {}, 'record: argument "action" must be one of start, stop, cancel'),
        ("record", {"action": "pause"}, 'argument "action" must be one of'),
        ("record", {"action": 1}, 'argument "action"'),
        ("set", {}, "set: give at least one of target_lang, source_lang, speaker, mode, policy"),
        ("set", {"policy": "eager"}, 'argument "policy" must be one of overlap, vad, agreement'),
        ("stream", {}, 'stream: argument "action" must be one of start, stop'),
        ("stream", {"action": "pause"}, 'argument "action" must be one of start, stop'),
        ("stream", {"action": "start", "policy": "vad"}, 'stream: unknown argument "policy"'),
        ("set", {"speaker": "2"}, 'set: argument "speaker" must be an integer'),
        ("set", {"speaker": True}, 'argument "speaker" must be an integer'),
        ("set", {"speaker": -1}, 'argument "speaker" must be an integer between 0'),
        ("set", {"target_lang": 5}, 'argument "target_lang" must be a non-empty string'),
        ("set", {"target_lang": "French"}, 'argument "target_lang" must be a language code'),
        ("set", {"mode": "fast"}, 'argument "mode" must be one of complete, streaming'),
        ("set", {"volume": 3}, 'set: unknown argument "volume"'),
        ("status", {"verbose": True}, 'status: unknown argument "verbose" (allowed: none)'),
        ("translate", {}, 'translate: argument "audio_b64" must be a non-empty string'),
        ("translate", {"path": "/etc/shadow"}, 'translate: unknown argument "path"'),
        ("translate", {"audio_b64": "!!!"}, "audio_b64 is not valid base64"),
        ("translate", {"audio_b64": base64.b64encode(b"hello world!").decode()}, "not a WAV file"),
        ("translate", {"audio_b64": base64.b64encode(b"RIFF\0\0\0\0WAVEjunkjunk").decode()}, "undecodable WAV"),
        ("subscribe", {"queue_max": 0}, 'argument "queue_max" must be an integer between 1'),
    ],
)
def test_bad_arguments_name_the_argument(table: CommandTable, control: FakeControl, cmd: str,
                                         args: dict[str, Any], fragment: str) -> None:
    code, message = error_of(run(table, cmd, args))
    assert code is ErrorCode.BAD_REQUEST
    assert fragment in message
    assert control.calls == []


def test_unknown_command(table: CommandTable) -> None:
    code, message = error_of(run(table, "explode"))
    assert code is ErrorCode.UNKNOWN_COMMAND and '"explode"' in message


def test_set_passes_only_given_options(table: CommandTable, control: FakeControl) -> None:
    response = run(table, "set", {"target_lang": "deu", "speaker": 3})
    assert response.ok and response.result is not None
    assert control.calls == [("set_options", {"target_lang": "deu", "source_lang": None, "speaker": 3,
                                              "mode": None, "policy": None})]
    assert response.result["target_lang"] == "deu"


def test_set_policy_is_passed_on(table: CommandTable, control: FakeControl) -> None:
    response = run(table, "set", {"policy": "overlap"})
    assert response.ok and response.result is not None and response.result["policy"] == "overlap"
    assert control.calls[-1] == ("set_options", {"target_lang": None, "source_lang": None, "speaker": None,
                                                 "mode": None, "policy": "overlap"})


@pytest.mark.parametrize(("action", "method", "state"), [("start", "stream_start", "streaming"),
                                                         ("stop", "stream_stop", "idle")])
def test_stream_actions_call_the_daemon(table: CommandTable, control: FakeControl, action: str, method: str,
                                        state: str) -> None:
    response = run(table, "stream", {"action": action})
    assert response.ok and response.result is not None and response.result["state"] == state
    assert control.calls[-1][0] == method


def test_stream_refusal_is_refused(table: CommandTable, control: FakeControl) -> None:
    control.refuse.add("stream_start")
    code, message = error_of(run(table, "stream", {"action": "start"}))
    assert code is ErrorCode.REFUSED and message.startswith("stream: stream_start refused")


def test_swap_and_reload(table: CommandTable) -> None:
    swapped = run(table, "swap").result
    assert swapped is not None and swapped["target_lang"] == "eng" and swapped["source_lang"] == "fra"
    assert run(table, "reload").result == {"reloaded": True}


def test_refused_busy_and_internal(table: CommandTable, control: FakeControl) -> None:
    control.refuse.add("record_start")
    control.busy.add("reload")
    control.crash.add("swap_languages")
    assert error_of(run(table, "record", {"action": "start"})) == (
        ErrorCode.REFUSED, "record: record_start refused in state idle")
    assert error_of(run(table, "reload")) == (ErrorCode.BUSY, "reload: reload is busy")
    code, message = error_of(run(table, "swap"))
    assert code is ErrorCode.INTERNAL and "RuntimeError: swap_languages exploded" in message


def test_non_dict_result_is_internal(control: FakeControl) -> None:
    control.status = lambda: ["not", "a", "dict"]  # type: ignore[method-assign]
    code, _ = error_of(run(CommandTable(control), "status"))
    assert code is ErrorCode.INTERNAL


def test_translate_decodes_int16_wav_in_memory(table: CommandTable, control: FakeControl) -> None:
    samples = (np.sin(np.arange(8000) / 10) * 0.5).astype(np.float32)
    audio_b64 = base64.b64encode(wav_file_bytes(samples, 16000)).decode()
    response = run(table, "translate", {"audio_b64": audio_b64, "target_lang": "deu", "speaker": 1})
    assert response.ok and response.result is not None
    assert control.calls[-1] == ("translate_audio", {"n": 8000, "rate": 16000, "dtype": "float32",
                                                     "target_lang": "deu", "speaker": 1})
    assert response.result["audio_format"] == "pcm_s16le"
    returned = decode_pcm16_b64(response.result["audio_b64"])
    np.testing.assert_allclose(returned, samples[::-1], atol=2 / 32767)


def test_translate_mixes_float_stereo_to_mono(table: CommandTable, control: FakeControl) -> None:
    stereo = np.stack([np.full(4410, 0.5), np.full(4410, -0.25)], axis=1).astype(np.float32)
    audio_b64 = base64.b64encode(wav_file_bytes(stereo, 44100, subtype="FLOAT")).decode()
    assert run(table, "translate", {"audio_b64": audio_b64}).ok
    assert control.calls[-1][1]["rate"] == 44100 and control.calls[-1][1]["n"] == 4410


def test_translate_rejects_audio_over_the_limit(table: CommandTable, control: FakeControl) -> None:
    audio_b64 = base64.b64encode(wav_file_bytes(np.zeros(16000 * 3, np.float32), 16000)).decode()
    code, message = error_of(run(table, "translate", {"audio_b64": audio_b64}))
    assert code is ErrorCode.BAD_REQUEST and "3.0 s long, longer than the 2 s limit" in message
    assert control.calls == []


def test_subscribe_returns_the_subscription(table: CommandTable, control: FakeControl) -> None:
    outcome = table.dispatch(Request(id=1, cmd="subscribe", args={"queue_max": 5}))
    assert outcome.response.ok and outcome.response.result == {"subscribed": True, "queue_max": 5}
    assert outcome.subscription is not None and outcome.subscription.queue_max == 5
    control.bus.publish("state", state="idle")
    event = outcome.subscription.get(0)
    assert event is not None and event.fields == {"state": "idle"}
