"""Put this folder on PYTHONPATH to run a process as on an edge box without the export extra: importing torch,
transformers or the export stage fails, as it would there. At exit the process checks its own modules and
exits with status 86 if any of them got in anyway."""

from __future__ import annotations

import atexit
import importlib.abc
import os
import sys

FORBIDDEN = ("torch", "transformers", "seamless_export")
LEAK_EXIT_STATUS = 86


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 (import system signature)
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"{name} is not installed on this edge box")
        return None


def _check_modules() -> None:
    leaked = sorted(name for name in sys.modules if name.split(".")[0] in FORBIDDEN)
    if leaked:
        sys.stderr.write(f"forbidden modules imported: {', '.join(leaked)}\n")
        sys.stderr.flush()
        os._exit(LEAK_EXIT_STATUS)


sys.meta_path.insert(0, _Blocker())
atexit.register(_check_modules)
