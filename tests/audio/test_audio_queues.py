"""Bounded queues: drop-oldest on overflow, counted; put never waits."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from seamless_daemon.audio.queues import DropOldestQueue, SampleRing

JOIN_S = 10.0


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


def test_overflow_drops_oldest_and_counts() -> None:
    ring = SampleRing(10)
    ring.put(ramp(0, 6))
    ring.put(ramp(6, 7))  # 13 samples into 10: the 3 oldest go
    assert ring.depth == 10
    assert ring.dropped_samples == 3
    np.testing.assert_array_equal(ring.drain(), ramp(3, 10))
    assert ring.depth == 0


def test_block_larger_than_capacity_keeps_newest() -> None:
    ring = SampleRing(4)
    ring.put(ramp(0, 2))
    ring.put(ramp(2, 9))
    assert ring.dropped_samples == 7
    np.testing.assert_array_equal(ring.drain(), ramp(7, 4))


def test_order_survives_wraparound() -> None:
    ring = SampleRing(8)
    out = []
    for k in range(20):
        ring.put(ramp(k * 3, 3))
        out.append(ring.get(max_samples=3, timeout=0))
    np.testing.assert_array_equal(np.concatenate(out), ramp(0, 60))
    assert ring.dropped_samples == 0


def test_put_never_blocks_without_a_reader() -> None:
    ring = SampleRing(480)
    block = np.ones(960, dtype=np.float32)
    done = threading.Event()

    def producer() -> None:
        for _ in range(10_000):
            ring.put(block)
        done.set()

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    t.join(JOIN_S)
    assert done.is_set(), "put() blocked with a full ring and no reader"
    assert ring.depth == ring.capacity
    assert ring.dropped_samples == 10_000 * 960 - 480


def test_get_waits_for_min_samples_from_another_thread() -> None:
    ring = SampleRing(100)
    timer = threading.Timer(0.05, lambda: ring.put(ramp(0, 40)))
    timer.start()
    got = ring.get(timeout=JOIN_S, min_samples=30)
    np.testing.assert_array_equal(got, ramp(0, 40))


def test_get_timeout_returns_empty() -> None:
    ring = SampleRing(10)
    got = ring.get(timeout=0.01)
    assert got.size == 0 and got.dtype == np.float32


def test_bad_capacity_and_min_samples() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SampleRing(0)
    with pytest.raises(ValueError, match="min_samples"):
        SampleRing(5).get(timeout=0, min_samples=6)


def test_drop_oldest_queue() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(2)
    assert q.put(1) is None
    assert q.put(2) is None
    assert q.put(3) == 1
    assert q.dropped == 1
    assert [q.get(timeout=0), q.get(timeout=0), q.get(timeout=0)] == [2, 3, None]
