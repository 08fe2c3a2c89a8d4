"""Running latency figures for ``status``: the last value and the median over a bounded window per metric."""

from __future__ import annotations

import statistics
import threading
from collections import deque
from typing import Any

WINDOW = 50
DECIMALS = 3


class LatencyStats:
    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._values: dict[str, deque[float]] = {}

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self._values.setdefault(name, deque(maxlen=self._window)).append(float(value))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                name: {"last": round(values[-1], DECIMALS), "median": round(statistics.median(values), DECIMALS),
                       "count": len(values)}
                for name, values in self._values.items()
                if values
            }
