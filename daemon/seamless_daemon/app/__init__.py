"""The daemon application: wiring of config, runtime, audio, control and service."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from seamless_daemon.app.main import main as run_main

    return run_main(argv)
