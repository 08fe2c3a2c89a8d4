"""Command-line entry point: ``seamless-daemon [translate ...]``."""

from __future__ import annotations

import sys

TRANSLATE_COMMAND = "translate"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == TRANSLATE_COMMAND:
        from seamless_daemon.translate_cli import main as translate_main

        return translate_main(args[1:])
    from seamless_daemon.app import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
