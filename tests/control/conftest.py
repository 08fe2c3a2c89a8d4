"""Fixtures for control tests: short socket paths, an in-test DaemonControl, a running server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from control_fakes import FakeControl
from seamless_daemon.config import ControlConfig
from seamless_daemon.control.commands import CommandTable
from seamless_daemon.control.server import ControlServer


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # pytest's tmp_path can pass the 107-byte limit of UNIX socket paths.
    path = Path(tempfile.mkdtemp(prefix="sdc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
def settings(sock_dir: Path) -> ControlConfig:
    return ControlConfig(socket=str(sock_dir / "control.sock"))


@pytest.fixture
def server(control: FakeControl, settings: ControlConfig) -> Iterator[ControlServer]:
    srv = ControlServer(CommandTable(control), settings)
    srv.start()
    yield srv
    srv.stop()


def start_server(control: FakeControl, settings: ControlConfig, **changes: Any) -> ControlServer:
    srv = ControlServer(CommandTable(control), replace(settings, **changes))
    srv.start()
    return srv
