"""Control protocol: newline-delimited JSON messages and their framing.

Every message is one JSON object on one line, tagged ``"v": 1``:

* request  ``{"v": 1, "id": <str|int>, "cmd": "<name>", "args": {...}}``
* response ``{"v": 1, "id": ..., "ok": true, "result": {...}}`` or
  ``{"v": 1, "id": ..., "ok": false, "error": {"code": "<code>", "message": "<one line>"}}``
* event    ``{"v": 1, "event": "<name>", ...fields}``

:func:`encode` and :func:`decode` are the only way messages go to and from bytes. Decoding problems raise
:class:`ProtocolError`, which carries the error code to answer with. :class:`LineReader` frames a byte stream
into lines no longer than a bound. See docs/protocol.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
NEWLINE = b"\n"
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 64
MAX_ERROR_MESSAGE_CHARS = 500
RECV_CHUNK_BYTES = 64 * 1024
RESERVED_EVENT_KEYS = frozenset({"v", "event"})

RequestId = str | int | None


class ErrorCode(str, Enum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_COMMAND = "unknown_command"
    REFUSED = "refused"
    BUSY = "busy"
    INTERNAL = "internal"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"


def one_line(text: str, limit: int = MAX_ERROR_MESSAGE_CHARS) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ProtocolError(Exception):
    """A message that cannot be decoded or used. ``request_id`` is set when the id could be read."""

    def __init__(self, code: ErrorCode, message: str, request_id: RequestId = None) -> None:
        self.code = code
        self.message = one_line(message)
        self.request_id = request_id
        super().__init__(f"{code.value}: {self.message}")


@dataclass(frozen=True)
class ErrorInfo:
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class Request:
    id: RequestId
    cmd: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    id: RequestId
    ok: bool
    result: Mapping[str, Any] | None = None
    error: ErrorInfo | None = None

    @classmethod
    def success(cls, request_id: RequestId, result: Mapping[str, Any]) -> Response:
        return cls(id=request_id, ok=True, result=result)

    @classmethod
    def failure(cls, request_id: RequestId, code: ErrorCode, message: str) -> Response:
        return cls(id=request_id, ok=False, error=ErrorInfo(code, one_line(message)))

    @classmethod
    def from_error(cls, error: ProtocolError) -> Response:
        return cls.failure(error.request_id, error.code, error.message)


@dataclass(frozen=True)
class Event:
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)


Message = Request | Response | Event


# --- encoding ------------------------------------------------------------------------------------------------


def _to_wire(message: Message) -> dict[str, Any]:
    if isinstance(message, Request):
        return {"v": PROTOCOL_VERSION, "id": message.id, "cmd": message.cmd, "args": dict(message.args)}
    if isinstance(message, Response):
        wire: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": message.id, "ok": message.ok}
        if message.ok:
            wire["result"] = dict(message.result or {})
        else:
            error = message.error or ErrorInfo(ErrorCode.INTERNAL, "unspecified error")
            wire["error"] = {"code": error.code.value, "message": error.message}
        return wire
    if isinstance(message, Event):
        clash = RESERVED_EVENT_KEYS.intersection(message.fields)
        if clash:
            raise ValueError(f"event {message.name!r} uses reserved field names {sorted(clash)}")
        return {"v": PROTOCOL_VERSION, "event": message.name, **message.fields}
    raise TypeError(f"not a protocol message: {type(message).__name__}")


def _plain(value: Any) -> Any:
    """JSON fallback for array-likes and their scalars (numpy): anything with ``tolist()``."""
    to_list = getattr(value, "tolist", None)
    if callable(to_list):
        return to_list()
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")


def encode(message: Message) -> bytes:
    """One message → one UTF-8 JSON line ending in ``\\n``. Raises ValueError/TypeError for non-JSON values."""
    text = json.dumps(_to_wire(message), ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=_plain)
    return text.encode("utf-8") + NEWLINE


# --- decoding ------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_object(line: bytes) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"message is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "message JSON is nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"message must be a JSON object, got {type(data).__name__}")
    return data


def _read_id(data: Mapping[str, Any], required: bool) -> RequestId:
    if "id" not in data:
        if required:
            raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "id" is missing')
        return None
    value = data["id"]
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "id" must be a string or an integer')
    if isinstance(value, str) and len(value) > MAX_ID_CHARS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f'field "id" is longer than {MAX_ID_CHARS} characters')
    return value


def _read_name(data: Mapping[str, Any], key: str, request_id: RequestId) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f'field "{key}" must be a non-empty string of at most {MAX_NAME_CHARS} '
            "characters", request_id,
        )
    return value


def _check_version(data: Mapping[str, Any], request_id: RequestId) -> None:
    if "v" not in data:
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "v" is missing', request_id)
    version = data["v"]
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        shown = json.dumps(version)[:MAX_NAME_CHARS]
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION, f"protocol version {shown} is not supported (this is {PROTOCOL_VERSION})",
            request_id,
        )


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], kind: str, request_id: RequestId) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f'unknown {kind} field "{extra[0]}"', request_id)


REQUEST_KEYS = frozenset({"v", "id", "cmd", "args"})
RESPONSE_KEYS = frozenset({"v", "id", "ok", "result", "error"})


def _decode_request(data: Mapping[str, Any]) -> Request:
    request_id = _read_id(data, required=False)
    _check_version(data, request_id)
    request_id = _read_id(data, required=True)
    cmd = _read_name(data, "cmd", request_id)
    _check_keys(data, REQUEST_KEYS, "request", request_id)
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "args" must be a JSON object', request_id)
    return Request(id=request_id, cmd=cmd, args=args)


def _decode_response(data: Mapping[str, Any]) -> Response:
    request_id = _read_id(data, required=False)
    _check_version(data, request_id)
    _check_keys(data, RESPONSE_KEYS, "response", request_id)
    ok = data["ok"]
    if not isinstance(ok, bool):
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "ok" must be true or false', request_id)
    if ok:
        result = data.get("result", {})
        if not isinstance(result, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "result" must be a JSON object', request_id)
        return Response.success(request_id, result)
    error = data.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'field "error" must be {"code", "message"}', request_id)
    try:
        code = ErrorCode(error.get("code"))
    except ValueError:
        code = ErrorCode.INTERNAL
    return Response.failure(request_id, code, error["message"])


def _decode_event(data: Mapping[str, Any]) -> Event:
    _check_version(data, None)
    name = _read_name(data, "event", None)
    return Event(name=name, fields={key: value for key, value in data.items() if key not in RESERVED_EVENT_KEYS})


def decode(line: bytes) -> Message:
    """One line (with or without its newline) → Request, Response or Event, by the keys it carries."""
    data = _parse_object(line.rstrip(b"\r\n"))
    if "cmd" in data:
        return _decode_request(data)
    if "ok" in data:
        return _decode_response(data)
    if "event" in data:
        return _decode_event(data)
    request_id = _read_id(data, required=False) if "id" in data else None
    raise ProtocolError(ErrorCode.BAD_REQUEST, 'message has none of "cmd", "ok", "event"', request_id)


def decode_request(line: bytes) -> Request:
    """Decode a line that must be a request (the server's side)."""
    message = decode(line)
    if not isinstance(message, Request):
        raise ProtocolError(ErrorCode.BAD_REQUEST, 'expected a request (a message with "cmd")')
    return message


# --- framing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadResult:
    """One framed line. ``too_large``: the line passed the bound and was discarded. ``eof``: stream ended."""

    line: bytes = b""
    too_large: bool = False
    eof: bool = False


class LineReader:
    """Splits a byte stream into ``\\n``-terminated lines of at most ``max_bytes`` (newline excluded).

    A longer line is reported once as ``too_large`` and its remaining bytes are skipped up to its newline, so
    the stream stays usable. Memory is bounded by ``max_bytes`` plus one receive chunk.
    """

    def __init__(self, recv: Callable[[int], bytes], max_bytes: int, chunk_bytes: int = RECV_CHUNK_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self._recv = recv
        self._max = max_bytes
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        self._skipping = False
        self._eof = False

    def _take_line(self) -> ReadResult | None:
        end = self._buffer.find(NEWLINE)
        if self._skipping:
            if end < 0:
                self._buffer.clear()
                return None
            del self._buffer[: end + 1]
            self._skipping = False
            return self._take_line()
        if end >= 0 and end <= self._max:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            return ReadResult(line=line)
        if end > self._max or len(self._buffer) > self._max:
            self._skipping = True
            return ReadResult(too_large=True)
        return None

    def read_line(self) -> ReadResult:
        """Block until a full line, an oversized line, or the end of the stream."""
        while True:
            taken = self._take_line()
            if taken is not None:
                return taken
            if self._eof:
                # A final line without newline is incomplete: the peer left mid-message.
                if self._buffer and not self._skipping:
                    logger.debug("discarding %d bytes of an unterminated last line", len(self._buffer))
                self._buffer.clear()
                return ReadResult(eof=True)
            chunk = self._recv(self._chunk)
            if not chunk:
                self._eof = True
            else:
                self._buffer += chunk
