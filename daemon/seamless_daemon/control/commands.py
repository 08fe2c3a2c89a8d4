"""Command table: control requests → validated calls on the daemon.

Plain Python, no sockets. :class:`CommandTable` maps each command name to a handler that checks the request's
``args`` and calls a :class:`DaemonControl` (implemented by the app). Every outcome is a protocol
:class:`Response`: bad arguments become ``bad_request`` naming the argument, :class:`CommandRefused` becomes
``refused``, :class:`CommandBusy` becomes ``busy``, anything else raised becomes ``internal``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from seamless_daemon import __version__
from seamless_daemon.config import MODES, STREAMING_POLICIES
from seamless_daemon.config_checks import LANG_PATTERN
from seamless_daemon.control.events import (
    DEFAULT_QUEUE_MAX,
    MAX_QUEUE_MAX,
    EventSubscription,
    TooManySubscriptions,
)
from seamless_daemon.control.protocol import PROTOCOL_VERSION, ErrorCode, Request, Response, one_line
from seamless_daemon.control.wav import AUDIO_FORMAT, AudioDecodeError, decode_b64, decode_wav_bytes

logger = logging.getLogger(__name__)

RECORD_ACTIONS = ("start", "stop", "cancel")
STREAM_ACTIONS = ("start", "stop")
DEFAULT_MAX_AUDIO_SECONDS = 30.0
MAX_SPEAKER_ID = 1 << 16


class CommandRefused(Exception):
    """The daemon declines the command in its current state (→ ``refused``)."""


class CommandBusy(CommandRefused):
    """The daemon cannot take the command right now; retrying later may work (→ ``busy``)."""


class ArgumentError(ValueError):
    """A request argument is missing, unknown or of the wrong type (→ ``bad_request``)."""


class DaemonControl(Protocol):
    """What the control layer needs from the daemon. Every method may raise :class:`CommandRefused`."""

    def status(self) -> dict[str, Any]: ...

    def record_start(self) -> dict[str, Any]: ...

    def record_stop(self) -> dict[str, Any]: ...

    def record_cancel(self) -> dict[str, Any]: ...

    def set_options(
        self, target_lang: str | None, source_lang: str | None, speaker: int | None, mode: str | None,
        policy: str | None,
    ) -> dict[str, Any]: ...

    def stream_start(self) -> dict[str, Any]:
        """Start streaming (the same as ``set mode streaming``)."""
        ...

    def stream_stop(self) -> dict[str, Any]:
        """Stop streaming after finishing the open utterance (the same as ``set mode complete``)."""
        ...

    def swap_languages(self) -> dict[str, Any]: ...

    def reload(self) -> dict[str, Any]: ...

    def translate_audio(
        self, samples: np.ndarray, sample_rate: int, target_lang: str | None, speaker: int | None
    ) -> dict[str, Any]:
        """Translate mono float32 samples. The result holds ``text``, ``text_ids``, ``unit_ids``,
        ``sample_rate``, ``audio_b64`` (see :func:`seamless_daemon.control.wav.encode_pcm16_b64`),
        ``duration_s`` and ``timings_ms``."""
        ...

    def subscribe(self, queue_max: int) -> EventSubscription: ...


@dataclass(frozen=True)
class CommandOutcome:
    """The response to send, and for ``subscribe`` the subscription the connection then streams."""

    response: Response
    subscription: EventSubscription | None = None


class Args:
    """Typed access to a request's ``args``; every problem raises :class:`ArgumentError` naming the arg."""

    def __init__(self, cmd: str, args: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        self.cmd = cmd
        self._args = args
        for name in args:
            if name not in allowed:
                shown = ", ".join(allowed) if allowed else "none"
                raise ArgumentError(f'{cmd}: unknown argument "{name}" (allowed: {shown})')

    def _fail(self, name: str, expected: str) -> ArgumentError:
        value = self._args.get(name)
        shown = type(value).__name__ if not isinstance(value, (str, int, float)) else repr(value)[:40]
        return ArgumentError(f'{self.cmd}: argument "{name}" must be {expected}, got {shown}')

    def text(self, name: str, required: bool = False) -> str | None:
        value = self._args.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise self._fail(name, "a non-empty string")
        return value

    def lang(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not LANG_PATTERN.match(value):
            raise self._fail(name, 'a language code like "fra"')
        return value

    def integer(self, name: str, minimum: int, maximum: int) -> int | None:
        value = self._args.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self._fail(name, f"an integer between {minimum} and {maximum}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], required: bool = False) -> str | None:
        value = self._args.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or value not in choices:
            raise self._fail(name, f"one of {', '.join(choices)}")
        return value


Handler = Callable[[Args], CommandOutcome]


class CommandTable:
    """Dispatches requests to a :class:`DaemonControl`. ``max_audio_seconds`` bounds ``translate`` input."""

    def __init__(self, control: DaemonControl, max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS) -> None:
        self._control = control
        self._max_audio_seconds = max_audio_seconds
        self._table: dict[str, tuple[Handler, tuple[str, ...]]] = {
            "ping": (self._ping, ()),
            "version": (self._version, ()),
            "status": (self._status, ()),
            "record": (self._record, ("action",)),
            "set": (self._set, ("target_lang", "source_lang", "speaker", "mode", "policy")),
            "stream": (self._stream, ("action",)),
            "swap": (self._swap, ()),
            "reload": (self._reload, ()),
            "translate": (self._translate, ("audio_b64", "target_lang", "speaker")),
            "subscribe": (self._subscribe, ("queue_max",)),
        }

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(self._table)

    def dispatch(self, request: Request) -> CommandOutcome:
        """Run one request. Never raises: every failure is an error response."""
        entry = self._table.get(request.cmd)
        if entry is None:
            return self._fail(request, ErrorCode.UNKNOWN_COMMAND,
                              f'unknown command "{request.cmd}" (known: {", ".join(self._table)})')
        handler, allowed = entry
        try:
            outcome = handler(Args(request.cmd, request.args, allowed))
        except ArgumentError as exc:
            return self._fail(request, ErrorCode.BAD_REQUEST, str(exc))
        except CommandBusy as exc:
            return self._fail(request, ErrorCode.BUSY, f"{request.cmd}: {exc}")
        except CommandRefused as exc:
            return self._fail(request, ErrorCode.REFUSED, f"{request.cmd}: {exc}")
        except Exception as exc:  # a daemon bug must become an answer, not a dead connection
            logger.exception("command %s failed", request.cmd)
            return self._fail(request, ErrorCode.INTERNAL, f"{request.cmd} failed: {type(exc).__name__}: {exc}")
        result = outcome.response.result
        if not isinstance(result, Mapping):
            logger.error("command %s returned %s instead of a dict", request.cmd, type(result).__name__)
            return self._fail(request, ErrorCode.INTERNAL, f"{request.cmd} returned no result object")
        return CommandOutcome(Response.success(request.id, result), outcome.subscription)

    @staticmethod
    def _fail(request: Request, code: ErrorCode, message: str) -> CommandOutcome:
        return CommandOutcome(Response.failure(request.id, code, one_line(message)))

    @staticmethod
    def _ok(result: Any, subscription: EventSubscription | None = None) -> CommandOutcome:
        # The id is filled in by dispatch; a non-dict result is caught there.
        return CommandOutcome(Response(id=None, ok=True, result=result), subscription)

    def _ping(self, args: Args) -> CommandOutcome:
        return self._ok({"pong": True})

    def _version(self, args: Args) -> CommandOutcome:
        return self._ok({"version": __version__, "protocol": PROTOCOL_VERSION, "commands": list(self._table)})

    def _status(self, args: Args) -> CommandOutcome:
        return self._ok(self._control.status())

    def _record(self, args: Args) -> CommandOutcome:
        action = args.choice("action", RECORD_ACTIONS, required=True)
        calls = {"start": self._control.record_start, "stop": self._control.record_stop,
                 "cancel": self._control.record_cancel}
        return self._ok(calls[action]())

    def _set(self, args: Args) -> CommandOutcome:
        options = {
            "target_lang": args.lang("target_lang"),
            "source_lang": args.lang("source_lang"),
            "speaker": args.integer("speaker", 0, MAX_SPEAKER_ID),
            "mode": args.choice("mode", MODES),
            "policy": args.choice("policy", STREAMING_POLICIES),
        }
        if all(value is None for value in options.values()):
            raise ArgumentError(f"set: give at least one of {', '.join(options)}")
        return self._ok(self._control.set_options(**options))

    def _stream(self, args: Args) -> CommandOutcome:
        action = args.choice("action", STREAM_ACTIONS, required=True)
        return self._ok(self._control.stream_start() if action == "start" else self._control.stream_stop())

    def _swap(self, args: Args) -> CommandOutcome:
        return self._ok(self._control.swap_languages())

    def _reload(self, args: Args) -> CommandOutcome:
        return self._ok(self._control.reload())

    def _translate(self, args: Args) -> CommandOutcome:
        encoded = args.text("audio_b64", required=True)
        target_lang = args.lang("target_lang")
        speaker = args.integer("speaker", 0, MAX_SPEAKER_ID)
        try:
            audio = decode_wav_bytes(decode_b64(encoded or "", "audio_b64"), self._max_audio_seconds)
        except AudioDecodeError as exc:
            raise ArgumentError(f"translate: argument \"audio_b64\": {exc}") from None
        result = dict(self._control.translate_audio(audio.samples, audio.sample_rate, target_lang, speaker))
        result.setdefault("audio_format", AUDIO_FORMAT)
        return self._ok(result)

    def _subscribe(self, args: Args) -> CommandOutcome:
        queue_max = args.integer("queue_max", 1, MAX_QUEUE_MAX) or DEFAULT_QUEUE_MAX
        try:
            subscription = self._control.subscribe(queue_max)
        except TooManySubscriptions as exc:
            raise CommandBusy(str(exc)) from None
        return self._ok({"subscribed": True, "queue_max": queue_max}, subscription)
