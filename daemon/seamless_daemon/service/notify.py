"""systemd readiness/status notifications (sd_notify protocol).

Uses ``systemd.daemon.notify`` from systemd-python when it is importable, else a small stdlib sender: one
AF_UNIX datagram to ``$NOTIFY_SOCKET`` (a path, or an abstract socket written ``@name``). Without
``NOTIFY_SOCKET`` (not started by systemd, or ``NotifyAccess`` not granted) every call is a no-op returning
False. Send failures (the socket went away) are logged once per kind and never raised: notifying must not
take the daemon down.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

logger = logging.getLogger(__name__)

ENV_SOCKET = "NOTIFY_SOCKET"

try:
    from systemd import daemon as _sd_daemon
except ImportError:  # the "systemd" extra is optional
    _sd_daemon = None


def _stdlib_send(message: str) -> bool:
    target = os.environ.get(ENV_SOCKET, "")
    if not target:
        return False
    if target.startswith("@"):
        address = "\0" + target[1:]
    elif target.startswith("/"):
        address = target
    else:
        raise OSError(f"{ENV_SOCKET}={target!r} is neither an absolute path nor an abstract @name")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(message.encode("utf-8", "replace"), address)
    return True


def _systemd_send(message: str) -> bool:
    return bool(_sd_daemon.notify(message))


class Notifier:
    """Send sd_notify messages; ``backend`` is ``"systemd-python"`` or ``"stdlib"``."""

    def __init__(self, prefer_systemd_python: bool = True) -> None:
        use_lib = prefer_systemd_python and _sd_daemon is not None
        self.backend = "systemd-python" if use_lib else "stdlib"
        self._send: Callable[[str], bool] = _systemd_send if use_lib else _stdlib_send
        self._warned: set[str] = set()

    @property
    def enabled(self) -> bool:
        return bool(os.environ.get(ENV_SOCKET))

    def notify(self, message: str) -> bool:
        """Send ``message`` (newline-separated ``KEY=value`` lines); True if it was sent."""
        try:
            return self._send(message)
        except OSError as exc:
            kind = message.split("=", 1)[0]
            if kind not in self._warned:
                self._warned.add(kind)
                logger.warning("sd_notify %s failed: %s", kind, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def errno(self, code: int) -> bool:
        return self.notify(f"ERRNO={int(code)}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_default: Notifier | None = None


def default_notifier() -> Notifier:
    """The process-wide notifier."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def ready(status: str | None = None) -> bool:
    return default_notifier().ready(status)


def status(text: str) -> bool:
    return default_notifier().status(text)


def reloading() -> bool:
    return default_notifier().reloading()


def stopping() -> bool:
    return default_notifier().stopping()


def watchdog() -> bool:
    return default_notifier().watchdog()
