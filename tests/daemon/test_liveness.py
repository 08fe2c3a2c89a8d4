"""The watchdog fed by several loops: one hung loop stops every ping."""

from __future__ import annotations

from seamless_daemon.app.liveness import Liveness

STALE_S = 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hung_loop_stops_the_pings_until_it_beats_again() -> None:
    clock, pings = Clock(), []
    liveness = Liveness(lambda: pings.append(clock.now) or True, STALE_S, clock)
    liveness.register("streaming")
    assert liveness.beat("worker") and liveness.beat("streaming")
    clock.now = 2.0  # the streaming loop is stuck in a step; the worker keeps beating
    assert not liveness.beat("worker")
    assert liveness.hung() == ["streaming"]
    assert liveness.beat("streaming")  # it came back
    liveness.unregister("streaming")  # and ended normally
    clock.now = 5.0
    assert liveness.beat("worker")
    assert pings == [0.0, 0.0, 2.0, 5.0]
