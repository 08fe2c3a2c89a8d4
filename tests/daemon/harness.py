"""Runs the real daemon as a child process with a real NOTIFY_SOCKET, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 5.0
NOTIFY_RECV_BYTES = 4096
NOTIFY_POLL_S = 0.2
REPO = Path(__file__).resolve().parents[2]
TORCH_BLOCKER = REPO / "tests" / "no_torch"


@dataclass
class NotifyListener:
    """A bound AF_UNIX datagram socket that collects sd_notify messages."""

    path: Path
    messages: list[str] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.bind(str(self.path))
        sock.settimeout(NOTIFY_POLL_S)
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(NOTIFY_RECV_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.extend(data.decode().splitlines())

    def wait_for(self, line: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if line in self.messages:
                return True
            time.sleep(0.05)
        return False

    def count(self, line: str) -> int:
        return sum(1 for message in self.messages if message == line)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        if self._sock is not None:
            self._sock.close()


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class DaemonProcess:
    config: Path
    workdir: Path
    watchdog_usec: int | None = None
    proc: subprocess.Popen | None = None
    notify: NotifyListener | None = None
    stderr_path: Path | None = None

    def start(self, wait_ready: bool = True) -> None:
        self.notify = NotifyListener(self.workdir / "notify.sock")
        self.notify.start()
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify.path), PYTHONPATH=str(TORCH_BLOCKER))
        if self.watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        self.stderr_path = self.workdir / "daemon.stderr"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seamless_daemon", "--config", str(self.config)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "wb"),
        )
        if wait_ready and not self.notify.wait_for("READY=1", READY_TIMEOUT_S):
            self.stop()
            raise AssertionError(f"daemon never sent READY=1; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM, then the exit status (the daemon must stop within STOP_TIMEOUT_S)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -signal.SIGKILL
        if self.notify is not None:
            time.sleep(NOTIFY_POLL_S)
            self.notify.close()
        return code
