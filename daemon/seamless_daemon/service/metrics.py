"""Small counters and latency summaries for ``STATUS=`` lines and the control socket's status reply."""

from __future__ import annotations

import logging
import statistics
import threading
from collections import deque
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 100  # latencies kept per series
MS_PER_S = 1000.0


@dataclass(frozen=True)
class MetricsSnapshot:
    counters: dict[str, int] = field(default_factory=dict)
    median_ms: dict[str, float] = field(default_factory=dict)

    def status_line(self) -> str:
        """One line for ``STATUS=``, e.g. ``utterances=3 latency_ms=812``."""
        parts = [f"{k}={v}" for k, v in sorted(self.counters.items())]
        parts += [f"{k}_ms={v:.0f}" for k, v in sorted(self.median_ms.items())]
        return " ".join(parts)


class Metrics:
    """Thread-safe named counters and bounded windows of latencies (seconds in, medians in ms out)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window <= 0:
            raise ValueError(f"metrics window must be positive, got {window}")
        self._window = window
        self._counters: dict[str, int] = {}
        self._latencies: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def incr(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + by

    def observe(self, name: str, seconds: float) -> None:
        with self._lock:
            self._latencies.setdefault(name, deque(maxlen=self._window)).append(seconds)

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                dict(self._counters),
                {k: statistics.median(v) * MS_PER_S for k, v in self._latencies.items() if v},
            )
