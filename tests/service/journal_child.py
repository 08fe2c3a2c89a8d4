"""Log one record through service.logging_setup; the parent reads what reached journald's socket."""

from __future__ import annotations

import logging
import sys

from seamless_daemon.service.logging_setup import setup_logging


def main() -> int:
    chosen = setup_logging("info")
    print(chosen.target, flush=True)
    log = logging.getLogger("seamless_daemon.test")
    log.debug("below the level")
    log.warning("device lost: %s", "virt_mic", extra={"AUDIO_DEVICE": "virt_mic"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
