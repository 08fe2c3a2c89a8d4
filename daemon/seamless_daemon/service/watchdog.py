"""systemd watchdog, kicked from the worker's own loop.

``WatchdogSec=`` in the unit makes systemd set ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). The worker loop calls
:meth:`Watchdog.kick` every time round; a kick sends ``WATCHDOG=1`` at most every ``usec / 2``. There is
deliberately no timer thread: if inference hangs, the loop stops, the pings stop, and systemd kills and
restarts the daemon. The loop must wake at least every :attr:`Watchdog.interval_s` (a quarter of the
timeout; use it as the timeout of its queue reads) so an idle daemon still pings: with pings at most every
half timeout, the longest gap between two pings is then three quarters of the timeout.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .notify import Notifier, default_notifier

logger = logging.getLogger(__name__)

ENV_USEC = "WATCHDOG_USEC"
ENV_PID = "WATCHDOG_PID"
USEC_PER_S = 1_000_000
PING_FRACTION = 0.5  # pings at most every half timeout, as sd_watchdog_enabled(3) recommends
WAKE_FRACTION = 0.25  # the loop wakes every quarter timeout: the worst ping gap is 3/4 of the timeout
IDLE_INTERVAL_S = 1.0  # wake interval offered when no watchdog is configured


@dataclass(frozen=True)
class WatchdogConfig:
    """The watchdog systemd asked for; ``timeout_s`` None means none."""

    timeout_s: float | None

    @property
    def enabled(self) -> bool:
        return self.timeout_s is not None


def watchdog_config(env: Mapping[str, str] | None = None, pid: int | None = None) -> WatchdogConfig:
    """Read ``WATCHDOG_USEC``/``WATCHDOG_PID`` like ``sd_watchdog_enabled``; bad values disable it (logged)."""
    env = os.environ if env is None else env
    raw = env.get(ENV_USEC, "")
    if not raw:
        return WatchdogConfig(None)
    try:
        usec = int(raw)
    except ValueError:
        logger.warning("ignoring %s=%r: not an integer", ENV_USEC, raw)
        return WatchdogConfig(None)
    if usec <= 0:
        logger.warning("ignoring %s=%r: not positive", ENV_USEC, raw)
        return WatchdogConfig(None)
    owner = env.get(ENV_PID, "")
    if owner:
        me = os.getpid() if pid is None else pid
        if not owner.isdigit() or int(owner) != me:
            logger.info("watchdog belongs to pid %s, not %d: not pinging", owner, me)
            return WatchdogConfig(None)
    return WatchdogConfig(usec / USEC_PER_S)


class Watchdog:
    """Rate-limited ``WATCHDOG=1`` sender for the worker loop."""

    def __init__(
        self,
        config: WatchdogConfig | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = watchdog_config() if config is None else config
        self._notifier = default_notifier() if notifier is None else notifier
        self._clock = clock
        self._last: float | None = None
        self.pings = 0

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    @property
    def interval_s(self) -> float:
        """How often the loop must call :meth:`kick`: a quarter of the watchdog timeout."""
        timeout = self._config.timeout_s
        return timeout * WAKE_FRACTION if timeout is not None else IDLE_INTERVAL_S

    @property
    def min_spacing_s(self) -> float:
        """The shortest gap between two pings: half the watchdog timeout."""
        timeout = self._config.timeout_s
        return timeout * PING_FRACTION if timeout is not None else 0.0

    def kick(self) -> bool:
        """Ping if the last ping is at least ``min_spacing_s`` old; True if a ping was sent."""
        if not self._config.enabled:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.min_spacing_s:
            return False
        self._last = now
        sent = self._notifier.watchdog()
        if sent:
            self.pings += 1
        return sent
