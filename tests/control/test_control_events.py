"""Event bus and subscriptions: bounded, drop-oldest, never blocking the publisher."""

from __future__ import annotations

import threading

import pytest
from seamless_daemon.control.events import EventBus, EventSubscription, TooManySubscriptions


def test_publish_reaches_every_subscriber_in_order() -> None:
    bus = EventBus()
    first, second = bus.subscribe(8), bus.subscribe(8)
    bus.publish("state", state="recording")
    bus.publish("text", text="salut", text_ids=[1], target_lang="fra")
    for sub in (first, second):
        one, two = sub.get(0), sub.get(0)
        assert one is not None and one.name == "state" and one.fields == {"state": "recording"}
        assert two is not None and two.name == "text" and two.fields["text"] == "salut"
        assert sub.get(0) is None


def test_full_queue_drops_oldest_and_counts() -> None:
    bus = EventBus()
    sub = bus.subscribe(2)
    for index in range(5):
        bus.publish("latency", index=index)
    assert sub.dropped == 3
    assert [sub.get(0).fields["index"] for _ in range(2)] == [3, 4]  # type: ignore[union-attr]


def test_close_wakes_a_waiting_reader_and_unregisters() -> None:
    bus = EventBus()
    sub = bus.subscribe(4)
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(sub.get(None)))
    reader.start()
    sub.close()
    reader.join(10)
    assert not reader.is_alive() and results == [None]
    assert bus.subscriber_count == 0
    bus.publish("state", state="idle")
    assert sub.get(0) is None


def test_subscription_limits() -> None:
    with pytest.raises(ValueError, match="queue_max"):
        EventSubscription(0)
    bus = EventBus(max_subscriptions=1)
    bus.subscribe()
    with pytest.raises(TooManySubscriptions):
        bus.subscribe()


def test_reserved_field_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="reserved"):
        EventBus().publish("state", v=2)
