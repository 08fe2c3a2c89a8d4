"""The shipped unit files: `systemd-analyze verify` is silent and the service's exposure is low, with and
without the GPU drop-in."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"
SERVICE = "seamless-daemon.service"
SOCKET = "seamless-daemon.socket"
GPU_DROP_IN = "gpu.conf"
EXEC = "/usr/local/bin/seamless-daemon"
STAND_IN = "/bin/true"
MAX_EXPOSURE = 2.5
ANALYZE_TIMEOUT_S = 60
EXPOSURE_RE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found:
        return found
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "systemd"], check=False, capture_output=True, text=True)
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.skip(f"systemd-analyze is missing and `apt-get install systemd` failed: "
                    f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return found


@pytest.fixture(scope="module")
def analyze() -> str:
    return _systemd_analyze()


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """Copies of the units. verify fails when ExecStart's binary is absent, which it is until
    `make install` ran; then the copy's ExecStart points at an existing stand-in binary instead."""
    for name in (SERVICE, SOCKET):
        text = (UNITS / name).read_text()
        if not Path(EXEC).exists():
            text = text.replace(EXEC, STAND_IN)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def unit_dir_with_gpu(unit_dir: Path) -> Path:
    """The units plus the GPU drop-in where systemd looks for it (``<unit>.d/`` next to the unit)."""
    drop_ins = unit_dir / f"{SERVICE}.d"
    drop_ins.mkdir()
    (drop_ins / GPU_DROP_IN).write_text((UNITS / GPU_DROP_IN).read_text())
    return unit_dir


def test_exec_start_is_the_installed_entry_point() -> None:
    text = (UNITS / SERVICE).read_text()
    assert f"ExecStart={EXEC} --config /etc/seamless-daemon/config.yaml" in text
    assert "\nMemoryDenyWriteExecute" not in text  # breaks sounddevice's cffi callbacks
    assert "\nType=notify\n" in text and "\nNotifyAccess=main\n" in text and "\nWatchdogSec=" in text


def test_verify_prints_nothing(analyze: str, unit_dir: Path) -> None:
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(unit_dir / SERVICE), str(unit_dir / SOCKET)],
        check=False, capture_output=True, text=True, cwd=unit_dir, timeout=ANALYZE_TIMEOUT_S,
    )
    # misspelled keys and bad values are only warnings with exit status 0: any output is a failure
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_verify_with_the_gpu_drop_in_prints_nothing(analyze: str, unit_dir_with_gpu: Path) -> None:
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(unit_dir_with_gpu / SERVICE), str(unit_dir_with_gpu / SOCKET)],
        check=False, capture_output=True, text=True, cwd=unit_dir_with_gpu, timeout=ANALYZE_TIMEOUT_S,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_verify_reads_the_gpu_drop_in(analyze: str, unit_dir_with_gpu: Path) -> None:
    drop_in = unit_dir_with_gpu / f"{SERVICE}.d" / GPU_DROP_IN
    drop_in.write_text(drop_in.read_text().replace("DeviceAllow=/dev/nvmap", "DeviceAlow=/dev/nvmap"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(unit_dir_with_gpu / SERVICE)], check=False,
                          capture_output=True, text=True, cwd=unit_dir_with_gpu, timeout=ANALYZE_TIMEOUT_S)
    assert "DeviceAlow" in proc.stdout + proc.stderr


def test_gpu_drop_in_keeps_the_device_policy_closed() -> None:
    lines = (UNITS / GPU_DROP_IN).read_text().splitlines()
    assert not any(line.startswith(("DevicePolicy=", "PrivateDevices=")) for line in lines)
    assert "DeviceAllow=char-nvidia* rw" in lines and "DeviceAllow=/dev/nvmap rw" in lines


def test_verify_would_catch_a_bad_key(analyze: str, unit_dir: Path) -> None:
    unit = unit_dir / SERVICE
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(unit)], check=False, capture_output=True, text=True,
                          cwd=unit_dir, timeout=ANALYZE_TIMEOUT_S)
    assert "NoNewPrivilege" in proc.stdout + proc.stderr


@pytest.mark.parametrize("units", ["unit_dir", "unit_dir_with_gpu"])
def test_security_exposure(analyze: str, units: str, request: pytest.FixtureRequest) -> None:
    unit_dir: Path = request.getfixturevalue(units)
    proc = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit_dir / SERVICE)],
        check=False, capture_output=True, text=True, cwd=unit_dir, timeout=ANALYZE_TIMEOUT_S,
    )
    match = EXPOSURE_RE.search(proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, match.group(0)
