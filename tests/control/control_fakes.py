"""Helpers for control tests: an in-test DaemonControl, WAV bytes, a raw line client."""

from __future__ import annotations

import io
import json
import socket
import time
from typing import Any

import numpy as np
import soundfile
from seamless_daemon.control.commands import CommandBusy, CommandRefused
from seamless_daemon.control.events import EventBus, EventSubscription
from seamless_daemon.control.wav import encode_pcm16_b64

OUTPUT_RATE = 16000
WAIT_S = 10.0


class FakeControl:
    """A DaemonControl that records calls; refusals and failures are switched on per method name."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.calls: list[tuple[str, Any]] = []
        self.refuse: set[str] = set()
        self.busy: set[str] = set()
        self.crash: set[str] = set()
        self.state = "idle"
        self.options: dict[str, Any] = {"target_lang": "fra", "source_lang": "eng", "speaker": 0,
                                        "mode": "complete"}

    def _enter(self, name: str, detail: Any = None) -> None:
        self.calls.append((name, detail))
        if name in self.busy:
            raise CommandBusy(f"{name} is busy")
        if name in self.refuse:
            raise CommandRefused(f"{name} refused in state {self.state}")
        if name in self.crash:
            raise RuntimeError(f"{name} exploded")

    def status(self) -> dict[str, Any]:
        self._enter("status")
        return {"state": self.state, **self.options}

    def record_start(self) -> dict[str, Any]:
        self._enter("record_start")
        self.state = "recording"
        return {"state": self.state}

    def record_stop(self) -> dict[str, Any]:
        self._enter("record_stop")
        self.state = "translating"
        return {"state": self.state}

    def record_cancel(self) -> dict[str, Any]:
        self._enter("record_cancel")
        self.state = "idle"
        return {"state": self.state}

    def set_options(self, target_lang: str | None, source_lang: str | None, speaker: int | None,
                    mode: str | None, policy: str | None) -> dict[str, Any]:
        given = {"target_lang": target_lang, "source_lang": source_lang, "speaker": speaker, "mode": mode,
                 "policy": policy}
        self._enter("set_options", given)
        self.options.update({key: value for key, value in given.items() if value is not None})
        return dict(self.options)

    def stream_start(self) -> dict[str, Any]:
        self._enter("stream_start")
        self.options["mode"], self.state = "streaming", "streaming"
        return {"state": self.state, **self.options}

    def stream_stop(self) -> dict[str, Any]:
        self._enter("stream_stop")
        self.options["mode"], self.state = "complete", "idle"
        return {"state": self.state, **self.options}

    def swap_languages(self) -> dict[str, Any]:
        self._enter("swap_languages")
        opts = self.options
        opts["target_lang"], opts["source_lang"] = opts["source_lang"], opts["target_lang"]
        return dict(opts)

    def reload(self) -> dict[str, Any]:
        self._enter("reload")
        return {"reloaded": True}

    def translate_audio(self, samples: np.ndarray, sample_rate: int, target_lang: str | None,
                        speaker: int | None) -> dict[str, Any]:
        self._enter("translate_audio", {"n": len(samples), "rate": sample_rate, "dtype": str(samples.dtype),
                                        "target_lang": target_lang, "speaker": speaker})
        out = samples[::-1].copy()
        return {"text": "bonjour", "text_ids": [1, 2], "unit_ids": [3, 4, 5], "sample_rate": OUTPUT_RATE,
                "audio_b64": encode_pcm16_b64(out), "duration_s": len(out) / OUTPUT_RATE,
                "timings_ms": {"total": 1.0}}

    def subscribe(self, queue_max: int) -> EventSubscription:
        self._enter("subscribe", queue_max)
        return self.bus.subscribe(queue_max)


def wav_file_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


class LineClient:
    """A raw protocol client: send bytes, read JSON lines."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, cmd: str, args: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
        self.send(json.dumps({"v": 1, "id": request_id, "cmd": cmd, "args": args or {}}).encode() + b"\n")
        return self.read()

    def read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def at_eof(self) -> bool:
        return self.buffer == b"" and self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()


