"""A stand-in daemon for the notify/watchdog tests: a worker loop that kicks the watchdog.

usage: notify_child.py BACKEND RUN_S [HANG_AFTER_S]
  BACKEND       systemd-python | stdlib
  RUN_S         how long the worker loop runs before a clean STOPPING=1
  HANG_AFTER_S  make one "inference" hang forever after this many seconds (the loop stops kicking)
"""

from __future__ import annotations

import sys
import threading
import time

from seamless_daemon.service.notify import Notifier
from seamless_daemon.service.watchdog import Watchdog

WORK_S = 0.01  # one pretend inference step


def main(argv: list[str]) -> int:
    backend, run_s = argv[1], float(argv[2])
    hang_after = float(argv[3]) if len(argv) > 3 else None
    notifier = Notifier(prefer_systemd_python=(backend == "systemd-python"))
    if notifier.backend != backend:
        print(f"backend {backend} not available (got {notifier.backend})", file=sys.stderr)
        return 2
    dog = Watchdog(notifier=notifier)
    notifier.status("loading model")
    notifier.ready("listening")
    wake = threading.Event()
    start = time.monotonic()
    while time.monotonic() - start < run_s:
        dog.kick()
        if hang_after is not None and time.monotonic() - start >= hang_after:
            notifier.status("hanging")
            threading.Event().wait()  # a hung inference: never returns, never kicks again
        time.sleep(WORK_S)
        wake.wait(min(dog.interval_s, WORK_S))
    notifier.stopping()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
