"""A bounded buffer of the most recent samples of a stream, addressed by absolute sample position."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


class SampleBuffer:
    """Keeps at most ``capacity`` samples: the newest ones, positions ``start .. end`` on the stream clock."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 sample, got {capacity}")
        self.capacity = capacity
        self._data = np.zeros(2 * capacity, dtype=np.float32)
        self._offset = 0  # first held sample in _data
        self._used = 0  # samples held
        self._end = 0  # stream position one past the newest sample

    @property
    def end(self) -> int:
        return self._end

    @property
    def start(self) -> int:
        return self._end - self._used

    def append(self, block: np.ndarray) -> None:
        samples = np.asarray(block, dtype=np.float32).reshape(-1)
        count = samples.size
        if count >= self.capacity:
            self._data[: self.capacity] = samples[-self.capacity:]
            self._offset, self._used = 0, self.capacity
        else:
            if self._offset + self._used + count > self._data.size:
                self._data[: self._used] = self._data[self._offset : self._offset + self._used]
                self._offset = 0
            tail = self._offset + self._used
            self._data[tail : tail + count] = samples
            self._used += count
            if self._used > self.capacity:
                self._offset += self._used - self.capacity
                self._used = self.capacity
        self._end += count

    def slice(self, start: int, end: int) -> np.ndarray:
        """A copy of the samples ``start .. end``, clamped to what the buffer still holds."""
        first = max(start, self.start)
        last = min(end, self._end)
        if last <= first:
            return np.zeros(0, dtype=np.float32)
        base = self._offset - self.start
        return self._data[base + first : base + last].copy()

    def holds(self, start: int) -> bool:
        """True when the sample at ``start`` is still in the buffer."""
        return start >= self.start
