"""Bounded queues between real-time audio callbacks and worker threads.

:class:`SampleRing` holds mono float32 samples with a fixed capacity. ``put`` never waits for space: on
overflow the OLDEST samples are overwritten and counted, because for live interpretation fresh audio
matters more than stale audio. ``put`` holds an internal lock only for one bounded array copy and does
not allocate, so it is safe to call from a PortAudio callback thread. ``get``/``drain`` are for the
worker side.

:class:`DropOldestQueue` is a bounded queue of objects (utterances) with the same overflow policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RingStats:
    """A snapshot of a :class:`SampleRing`."""

    capacity: int
    depth: int
    dropped_samples: int
    total_put: int


class SampleRing:
    """A bounded ring of mono float32 samples; drop-oldest on overflow."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"SampleRing capacity must be a positive number of samples, got {capacity}")
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._capacity = capacity
        self._start = 0  # index of the oldest sample
        self._depth = 0
        self._dropped = 0
        self._total_put = 0
        self._cond = threading.Condition(threading.Lock())

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def depth(self) -> int:
        """Samples currently held."""
        return self._depth

    @property
    def dropped_samples(self) -> int:
        """Samples discarded so far because the ring was full."""
        return self._dropped

    def stats(self) -> RingStats:
        with self._cond:
            return RingStats(self._capacity, self._depth, self._dropped, self._total_put)

    def put(self, samples: np.ndarray) -> None:
        """Append samples, overwriting the oldest on overflow. Never waits for space."""
        n = int(samples.shape[0])
        if n == 0:
            return
        cap = self._capacity
        with self._cond:
            self._total_put += n
            if n >= cap:
                # Only the newest ``cap`` samples survive.
                self._dropped += self._depth + n - cap
                self._buf[:] = samples[n - cap :]
                self._start = 0
                self._depth = cap
            else:
                overflow = self._depth + n - cap
                if overflow > 0:
                    self._dropped += overflow
                    self._start = (self._start + overflow) % cap
                    self._depth -= overflow
                end = (self._start + self._depth) % cap
                first = min(n, cap - end)
                self._buf[end : end + first] = samples[:first]
                if first < n:
                    self._buf[: n - first] = samples[first:]
                self._depth += n
            self._cond.notify()

    def get(self, max_samples: int | None = None, timeout: float | None = None, min_samples: int = 1) -> np.ndarray:
        """Take up to ``max_samples`` of the oldest samples (all when None).

        Waits up to ``timeout`` seconds (forever when None, not at all when 0) until at least
        ``min_samples`` are held; returns what is there (possibly an empty array) when the time is up.
        """
        if min_samples > self._capacity:
            raise ValueError(f"min_samples {min_samples} exceeds the ring capacity {self._capacity}")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._depth < min_samples:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._take(self._depth if max_samples is None else min(max_samples, self._depth))

    def drain(self) -> np.ndarray:
        """Take everything held, without waiting."""
        with self._cond:
            return self._take(self._depth)

    def clear(self) -> int:
        """Discard everything held (not counted as dropped); returns how many samples were discarded."""
        with self._cond:
            n = self._depth
            self._start = 0
            self._depth = 0
            return n

    def _take(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float32)
        first = min(n, self._capacity - self._start)
        out[:first] = self._buf[self._start : self._start + first]
        if first < n:
            out[first:] = self._buf[: n - first]
        self._start = (self._start + n) % self._capacity
        self._depth -= n
        return out


class DropOldestQueue(Generic[T]):
    """A bounded FIFO of objects; ``put`` never waits and evicts the oldest item when full."""

    def __init__(self, maxlen: int) -> None:
        if maxlen <= 0:
            raise ValueError(f"DropOldestQueue maxlen must be positive, got {maxlen}")
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._dropped = 0
        self._cond = threading.Condition(threading.Lock())

    @property
    def dropped(self) -> int:
        """Items evicted so far because the queue was full."""
        return self._dropped

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> T | None:
        """Append ``item``; returns the evicted oldest item when the queue was full, else None."""
        with self._cond:
            evicted = None
            if len(self._items) >= self._maxlen:
                evicted = self._items.popleft()
                self._dropped += 1
            self._items.append(item)
            self._cond.notify()
            return evicted

    def get(self, timeout: float | None = None) -> T | None:
        """Take the oldest item, waiting up to ``timeout`` seconds; None when nothing arrived."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)  # woken by put() or wake(); the caller loops
            return self._items.popleft() if self._items else None

    def clear(self) -> list[T]:
        """Remove and return everything queued."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def wake(self) -> None:
        """Wake a thread blocked in :meth:`get` (it returns None if nothing is queued)."""
        with self._cond:
            self._cond.notify_all()
