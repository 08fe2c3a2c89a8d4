"""Logging target selection, the stderr fallback, and structured records on a real journald socket."""

from __future__ import annotations

import io
import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from seamless_daemon.service import logging_setup
from seamless_daemon.service.logging_setup import parse_level, setup_logging, under_systemd

CHILD = Path(__file__).with_name("journal_child.py")
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
RECV_TIMEOUT_S = 10.0
LEN_FMT = "<Q"  # journald native protocol: binary field length


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_plain_stderr_outside_systemd() -> None:
    out = io.StringIO()
    chosen = setup_logging("warning", env={}, stream=out)
    assert (chosen.target, chosen.level) == ("stderr", logging.WARNING)
    logging.getLogger("seamless_daemon.x").info("hidden")
    logging.getLogger("seamless_daemon.x").warning("shown")
    assert out.getvalue().strip().endswith("WARNING seamless_daemon.x: shown")
    assert "hidden" not in out.getvalue()


def test_under_systemd_without_journal_module_falls_back() -> None:
    out = io.StringIO()
    chosen = setup_logging("info", env={"INVOCATION_ID": "abc"}, stream=out, journal_available=False)
    assert chosen.target == "stderr"


@pytest.mark.skipif(logging_setup._journal is None, reason="systemd-python is not installed")
def test_under_systemd_with_journal_module_uses_journald() -> None:
    assert setup_logging("debug", env={"JOURNAL_STREAM": "8:123"}).target == "journald"
    assert sum(h.get_name() == logging_setup.HANDLER_NAME for h in logging.getLogger().handlers) == 1


def test_markers_and_levels() -> None:
    assert under_systemd({"JOURNAL_STREAM": "8:1"}) and under_systemd({"INVOCATION_ID": "x"})
    assert not under_systemd({})
    assert parse_level("DEBUG") == logging.DEBUG and parse_level(30) == 30
    with pytest.raises(ValueError, match=r"^log level: unknown level 'loud'"):
        parse_level("loud")


def _parse_native(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:  # KEY\n<u64 length><bytes>\n
            key = line
            (n,) = struct.unpack_from(LEN_FMT, data, nl + 1)
            start = nl + 1 + struct.calcsize(LEN_FMT)
            value = data[start:start + n]
            i = start + n + 1
        fields[key.decode()] = value.decode()
    return fields


@pytest.fixture
def journal_socket() -> Iterator[socket.socket]:
    if logging_setup._journal is None:
        pytest.skip("systemd-python is not installed")
    if os.geteuid() != 0:
        pytest.skip("binding /run/systemd/journal/socket needs root")
    if JOURNAL_SOCKET.exists():
        pytest.skip("a journald already owns /run/systemd/journal/socket")
    created = [p for p in (JOURNAL_SOCKET.parent.parent, JOURNAL_SOCKET.parent) if not p.exists()]
    JOURNAL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(JOURNAL_SOCKET))
    sock.settimeout(RECV_TIMEOUT_S)
    yield sock
    sock.close()
    JOURNAL_SOCKET.unlink(missing_ok=True)
    for path in reversed(created):
        path.rmdir()


def test_structured_record_reaches_journald(journal_socket: socket.socket) -> None:
    env = dict(os.environ, JOURNAL_STREAM="8:12345", INVOCATION_ID="0123456789abcdef")
    proc = subprocess.run([sys.executable, str(CHILD)], env=env, check=False, capture_output=True, text=True,
                          timeout=RECV_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "journald"
    fields = _parse_native(journal_socket.recv(65536))
    assert fields["MESSAGE"] == "device lost: virt_mic"
    assert fields["SYSLOG_IDENTIFIER"] == "seamless-daemon"
    assert fields["PRIORITY"] == "4"  # warning
    assert fields["LOGGER"] == "seamless_daemon.test"
    assert fields["CODE_FILE"].endswith("journal_child.py") and fields["CODE_FUNC"] == "main"
    assert fields["AUDIO_DEVICE"] == "virt_mic"
    journal_socket.settimeout(0.2)
    with pytest.raises(TimeoutError):  # the DEBUG record was filtered by the level
        journal_socket.recv(65536)
