"""Logging: structured journald records under systemd, plain stderr lines otherwise.

Under systemd (``JOURNAL_STREAM`` or ``INVOCATION_ID`` set) and with systemd-python importable, records go
to journald through ``systemd.journal.JournalHandler`` with ``SYSLOG_IDENTIFIER=seamless-daemon`` and the
usual structured fields (``CODE_FILE``, ``CODE_LINE``, ``CODE_FUNC``, ``LOGGER``, ``THREAD_NAME``, ...);
anything passed as ``extra={"SESSION": ...}`` with an upper-case name becomes a journal field too.
Otherwise a plain one-line format goes to stderr (which systemd would also capture, without the fields).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

logger = logging.getLogger(__name__)

SYSLOG_IDENTIFIER = "seamless-daemon"
SYSTEMD_ENV_MARKERS = ("JOURNAL_STREAM", "INVOCATION_ID")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(message)s"
HANDLER_NAME = "seamless-daemon"

try:
    from systemd import journal as _journal
except ImportError:  # the "systemd" extra is optional
    _journal = None


@dataclass(frozen=True)
class LoggingSetup:
    """What :func:`setup_logging` chose."""

    target: str  # "journald" or "stderr"
    level: int


def under_systemd(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return any(env.get(name) for name in SYSTEMD_ENV_MARKERS)


def parse_level(level: str | int) -> int:
    """``"info"``/``"DEBUG"``/``20`` to a logging level; a one-line ValueError names a bad one."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    value = logging.getLevelName(str(level).strip().upper())
    if isinstance(value, int):
        return value
    raise ValueError(f"log level: unknown level {level!r}; use debug, info, warning, error or critical")


def setup_logging(
    level: str | int = "info",
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    journal_available: bool | None = None,
) -> LoggingSetup:
    """Configure the root logger (replacing a handler this function installed before)."""
    numeric = parse_level(level)
    use_journal = under_systemd(env) and (_journal is not None if journal_available is None else journal_available)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
            handler.close()
    handler: logging.Handler
    if use_journal and _journal is not None:
        handler = _journal.JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
        handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
        target = "journald"
    else:
        handler = logging.StreamHandler(sys.stderr if stream is None else stream)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
        target = "stderr"
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(numeric)
    return LoggingSetup(target, numeric)
