"""The systemd watchdog fed by several loops: a ping goes out only while every registered loop is alive.

The inference worker and, while streaming, the streaming loop each call :meth:`Liveness.beat` from their own
loop (and wake at least every ``Watchdog.interval_s`` to do so). A loop that has not beaten for ``stale_s``
counts as hung: no loop's beat pings any more, so a hung inference in either loop stops the pings and systemd
restarts the daemon. A loop that ends normally unregisters first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

STALE_WAKES = 2  # a loop is hung after missing this many wake intervals


class Liveness:
    def __init__(self, kick: Callable[[], bool], stale_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if stale_s <= 0:
            raise ValueError(f"stale_s must be > 0, got {stale_s}")
        self._kick = kick
        self._stale_s = stale_s
        self._clock = clock
        self._beats: dict[str, float] = {}
        self._lock = threading.Lock()

    def register(self, loop: str) -> None:
        with self._lock:
            self._beats[loop] = self._clock()

    def unregister(self, loop: str) -> None:
        with self._lock:
            self._beats.pop(loop, None)

    def beat(self, loop: str) -> bool:
        """Record that ``loop`` is alive; ping the watchdog when every loop is. True if a ping went out."""
        with self._lock:
            now = self._clock()
            self._beats[loop] = now
            hung = [name for name, last in self._beats.items() if now - last > self._stale_s]
            if hung:
                logger.debug("not pinging the watchdog: %s silent for more than %.2f s", ", ".join(hung),
                             self._stale_s)
                return False
            return self._kick()

    def hung(self) -> list[str]:
        with self._lock:
            now = self._clock()
            return [name for name, last in self._beats.items() if now - last > self._stale_s]
