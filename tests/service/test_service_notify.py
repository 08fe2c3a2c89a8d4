"""sd_notify and watchdog through a real NOTIFY_SOCKET bound by the test, from a real child process."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from seamless_daemon.service import notify as notify_mod
from seamless_daemon.service.notify import Notifier
from seamless_daemon.service.watchdog import Watchdog, WatchdogConfig, watchdog_config

CHILD = Path(__file__).with_name("notify_child.py")
BACKENDS = ["stdlib", pytest.param("systemd-python", marks=pytest.mark.skipif(
    notify_mod._sd_daemon is None, reason="systemd-python is not installed (pip install systemd-python)"))]
WATCHDOG_USEC = 200_000  # 0.2 s: pings at most every 0.1 s
RUN_S = 1.5
HANG_AFTER_S = 0.5
QUIET_WINDOW_S = 2.0  # 20 ping spacings without a ping after the hang
RECV_TIMEOUT_S = 10.0
CRED_FMT = "3i"  # struct ucred: pid, uid, gid


@dataclass
class Received:
    messages: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [line for m in self.messages for line in m.splitlines()]


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
        env_value = address
    else:
        name = f"seamless-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        env_value = "@" + name
    yield sock, env_value
    sock.close()


def receive(sock: socket.socket, until: str, deadline_s: float = RECV_TIMEOUT_S,
            quiet_after: str | None = None, quiet_s: float = 0.0) -> Received:
    """Collect datagrams until a line equals ``until`` (or, after ``quiet_after``, for ``quiet_s``)."""
    got = Received()
    end = time.monotonic() + deadline_s
    quiet_end: float | None = None
    while time.monotonic() < (quiet_end if quiet_end is not None else end):
        sock.settimeout(max(0.01, (quiet_end or end) - time.monotonic()))
        try:
            data, anc, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize(CRED_FMT)))
        except TimeoutError:
            continue
        pid = -1
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack(CRED_FMT, payload[: struct.calcsize(CRED_FMT)])[0]
        got.messages.append(data.decode())
        got.pids.append(pid)
        got.times.append(time.monotonic())
        lines = data.decode().splitlines()
        if until in lines:
            break
        if quiet_after is not None and quiet_after in lines and quiet_end is None:
            quiet_end = time.monotonic() + quiet_s
    return got


def start_child(env_value: str, backend: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, NOTIFY_SOCKET=env_value, WATCHDOG_USEC=str(WATCHDOG_USEC))
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, str(CHILD), backend, *args], env=env)


@pytest.mark.parametrize("backend", BACKENDS)
def test_child_sends_status_ready_watchdog_stopping(notify_socket, backend: str) -> None:
    sock, env_value = notify_socket
    child = start_child(env_value, backend, str(RUN_S))
    try:
        got = receive(sock, until="STOPPING=1")
        assert child.wait(RECV_TIMEOUT_S) == 0
    finally:
        child.kill()
    lines = got.lines()
    assert lines[:3] == ["STATUS=loading model", "READY=1", "STATUS=listening"]
    assert lines[-1] == "STOPPING=1"
    pings = lines.count("WATCHDOG=1")
    assert pings >= 2
    assert set(got.pids) == {child.pid}  # SCM_CREDENTIALS: the main process sent everything
    # rate limit: no two pings closer than half of WATCHDOG_USEC
    ping_times = [t for t, m in zip(got.times, got.messages) if m == "WATCHDOG=1"]
    assert pings <= RUN_S / (WATCHDOG_USEC / 1e6 / 2) + 1, ping_times


@pytest.mark.parametrize("backend", BACKENDS)
def test_hung_worker_stops_pinging(notify_socket, backend: str) -> None:
    sock, env_value = notify_socket
    child = start_child(env_value, backend, "60", str(HANG_AFTER_S))
    try:
        got = receive(sock, until="never", quiet_after="STATUS=hanging", quiet_s=QUIET_WINDOW_S)
    finally:
        child.kill()
        child.wait()
    lines = got.lines()
    hang = lines.index("STATUS=hanging")
    assert "WATCHDOG=1" in lines[:hang]  # it pinged while the loop ran...
    assert "WATCHDOG=1" not in lines[hang + 1:]  # ...and no timer thread pings for the hung loop


def test_no_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    for prefer in (True, False):
        n = Notifier(prefer_systemd_python=prefer)
        assert not n.enabled
        assert n.ready() is False and n.watchdog() is False


def test_dead_socket_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    for prefer in (True, False):
        assert Notifier(prefer_systemd_python=prefer).status("x") is False
    assert "sd_notify STATUS failed" in caplog.text


def test_watchdog_env_parsing() -> None:
    assert watchdog_config({}).timeout_s is None
    assert watchdog_config({"WATCHDOG_USEC": "30000000"}).timeout_s == 30.0
    assert watchdog_config({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2).timeout_s is None
    assert watchdog_config({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=7).timeout_s == 30.0
    assert watchdog_config({"WATCHDOG_USEC": "soon"}).timeout_s is None
    assert watchdog_config({"WATCHDOG_USEC": "0"}).timeout_s is None


def test_watchdog_rate_limit_and_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "n.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
    now = [100.0]
    dog = Watchdog(WatchdogConfig(30.0), Notifier(prefer_systemd_python=False), clock=lambda: now[0])
    assert dog.interval_s == 7.5 and dog.min_spacing_s == 15.0
    sent = []
    for _step in range(8):  # a loop waking every interval_s for 52.5 s
        sent.append(dog.kick())
        now[0] += dog.interval_s
    assert sent == [True, False, True, False, True, False, True, False]
    assert Watchdog(WatchdogConfig(None)).kick() is False
    sock.settimeout(1)
    assert [sock.recv(64) for _ in range(4)] == [b"WATCHDOG=1"] * 4
    sock.close()
