"""Event fan-out from the daemon to ``subscribe`` connections.

The app calls :meth:`EventBus.publish`; every open :class:`EventSubscription` receives the event in its own
bounded queue. Publishing never blocks: a full queue drops its oldest event and counts the drop. The control
server reads subscriptions with :meth:`EventSubscription.get`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from seamless_daemon.control.protocol import RESERVED_EVENT_KEYS, Event

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_MAX = 256
MAX_QUEUE_MAX = 4096
MAX_SUBSCRIPTIONS = 64


class TooManySubscriptions(RuntimeError):
    """The bus already holds its maximum number of subscriptions."""


class EventSubscription:
    """A bounded, drop-oldest queue of events for one subscriber."""

    def __init__(
        self, queue_max: int = DEFAULT_QUEUE_MAX, on_close: Callable[[EventSubscription], None] | None = None
    ) -> None:
        if not 1 <= queue_max <= MAX_QUEUE_MAX:
            raise ValueError(f"queue_max must be between 1 and {MAX_QUEUE_MAX}, got {queue_max}")
        self._events: deque[Event] = deque(maxlen=queue_max)
        self._cond = threading.Condition()
        self._closed = False
        self._dropped = 0
        self._on_close = on_close
        self.queue_max = queue_max

    @property
    def dropped(self) -> int:
        """Events discarded so far because the queue was full."""
        with self._cond:
            return self._dropped

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def put(self, event: Event) -> None:
        """Queue an event; never blocks. Ignored once closed."""
        with self._cond:
            if self._closed:
                return
            if len(self._events) == self._events.maxlen:
                self._dropped += 1
            self._events.append(event)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Event | None:
        """The oldest queued event, or None after ``timeout`` seconds or once closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._events:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._events.popleft()

    def close(self) -> None:
        """Stop receiving events and wake any waiting reader. Safe to call more than once."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._events.clear()
            self._cond.notify_all()
        if self._on_close is not None:
            self._on_close(self)


class EventBus:
    """Publishes events to every open subscription. Thread-safe; ``publish`` never blocks on a subscriber."""

    def __init__(self, max_subscriptions: int = MAX_SUBSCRIPTIONS) -> None:
        self._lock = threading.Lock()
        self._subscriptions: set[EventSubscription] = set()
        self._max = max_subscriptions

    def subscribe(self, queue_max: int = DEFAULT_QUEUE_MAX) -> EventSubscription:
        """A new subscription; raises TooManySubscriptions when ``max_subscriptions`` are already open."""
        subscription = EventSubscription(queue_max, on_close=self._forget)
        with self._lock:
            if len(self._subscriptions) >= self._max:
                raise TooManySubscriptions(f"too many event subscriptions (limit {self._max})")
            self._subscriptions.add(subscription)
        return subscription

    def _forget(self, subscription: EventSubscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def publish(self, event_name: str, **fields: Any) -> None:
        """Send ``{"event": event_name, **fields}`` to every subscriber. Field values must be JSON-encodable."""
        clash = RESERVED_EVENT_KEYS.intersection(fields)
        if clash:
            raise ValueError(f"event {event_name!r} uses reserved field names {sorted(clash)}")
        event = Event(name=event_name, fields=fields)
        with self._lock:
            targets = list(self._subscriptions)
        for subscription in targets:
            subscription.put(event)

    def close(self) -> None:
        """Close every subscription (on daemon shutdown)."""
        with self._lock:
            targets = list(self._subscriptions)
        for subscription in targets:
            subscription.close()
