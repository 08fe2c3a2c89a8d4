"""Control client: one connection to the daemon's control socket, request by request."""

from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from seamless_daemon.config import DEFAULT_SOCKET
from seamless_daemon.control.protocol import (
    Event,
    LineReader,
    ProtocolError,
    Request,
    Response,
    decode,
    encode,
)

logger = logging.getLogger(__name__)

SOCKET_ENV = "SEAMLESS_CONTROL_SOCKET"
DEFAULT_TIMEOUT_S = 10.0
# Replies carry translated audio; this bounds what the client will buffer for one line.
MAX_REPLY_BYTES = 64 * 1024 * 1024


def default_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


class ControlClientError(Exception):
    """Talking to the daemon failed; the message is one line."""


class DaemonNotRunning(ControlClientError):
    """No socket file, or nobody listening on it."""


class SocketPermissionError(ControlClientError):
    """The socket exists but this user may not open it."""


class ControlTimeout(ControlClientError):
    """The daemon did not answer in time."""


class ConnectionClosed(ControlClientError):
    """The daemon closed the connection."""


class ControlClient:
    """Connects on :meth:`connect` (or ``with``); :meth:`request` sends one command and waits for its reply."""

    def __init__(self, socket_path: str | None = None, timeout: float | None = DEFAULT_TIMEOUT_S) -> None:
        self.socket_path = socket_path or default_socket_path()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader: LineReader | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> ControlClient:  # noqa: PYI034 (typing.Self needs Python 3.11)
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise DaemonNotRunning(f"daemon not running: no one listening at {self.socket_path}") from None
        except PermissionError:
            sock.close()
            raise SocketPermissionError(f"permission denied on {self.socket_path}") from None
        except TimeoutError:
            sock.close()
            raise ControlTimeout(f"timed out connecting to {self.socket_path}") from None
        except OSError as exc:
            sock.close()
            raise ControlClientError(f"cannot connect to {self.socket_path}: {exc.strerror or exc}") from None
        self._sock = sock
        self._reader = LineReader(self._recv, MAX_REPLY_BYTES)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _recv(self, size: int) -> bytes:
        if self._sock is None:
            return b""
        try:
            return self._sock.recv(size)
        except TimeoutError:
            raise ControlTimeout(f"no answer from the daemon within {self.timeout:g} s") from None
        except OSError as exc:
            raise ControlClientError(f"connection to the daemon failed: {exc.strerror or exc}") from None

    def _read_message(self) -> Response | Event:
        if self._reader is None:
            raise ControlClientError("not connected")
        read = self._reader.read_line()
        if read.eof:
            raise ConnectionClosed("the daemon closed the connection")
        if read.too_large:
            raise ControlClientError(f"reply longer than {MAX_REPLY_BYTES} bytes")
        try:
            message = decode(read.line)
        except ProtocolError as exc:
            raise ControlClientError(f"unreadable reply from the daemon: {exc.message}") from None
        if not isinstance(message, (Response, Event)):
            raise ControlClientError("the daemon sent a request")
        return message

    def request(self, cmd: str, args: Mapping[str, Any] | None = None) -> Response:
        """Send one command and return its response (ok or error). Raises ControlClientError on I/O trouble."""
        if self._sock is None:
            self.connect()
        sock = self._sock
        if sock is None:
            raise ControlClientError("not connected")
        request = Request(id=next(self._ids), cmd=cmd, args=dict(args or {}))
        try:
            sock.sendall(encode(request))
        except TimeoutError:
            raise ControlTimeout(f"timed out sending to {self.socket_path}") from None
        except OSError as exc:
            # The daemon may have written a refusal and closed before reading: report that instead.
            early = self._early_rejection()
            if early is not None:
                return early
            raise ControlClientError(f"cannot send to the daemon: {exc.strerror or exc}") from None
        while True:
            message = self._read_message()
            if isinstance(message, Response) and message.id in (request.id, None):
                return message
            logger.debug("ignoring unrelated message while waiting for %s", cmd)

    def _early_rejection(self) -> Response | None:
        try:
            message = self._read_message()
        except ControlClientError:
            return None
        return message if isinstance(message, Response) else None

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """After a successful ``subscribe``: events until the daemon closes the stream."""
        if self._sock is None:
            raise ControlClientError("not connected")
        self._sock.settimeout(timeout)
        while True:
            try:
                message = self._read_message()
            except ConnectionClosed:
                return
            if isinstance(message, Event):
                yield message
            elif not message.ok and message.error is not None:
                raise ControlClientError(f"{message.error.code.value}: {message.error.message}")
