"""Token buckets by key, in the api process's memory.

Each key's bucket holds at most ``capacity`` tokens and refills at ``capacity`` per ``period_s``:
a caller may spend a whole period's allowance at once (a dashboard page load), then as fast as
it refills.  A request takes one token; an empty bucket says how long until the next one.

A bucket is kept as one number, the time at which it will be full again (the generic cell rate
algorithm): a take is allowed while that time is less than a period ahead, and moves it one
``period_s / capacity`` later.  Memory stays bounded: buckets are kept least recently used
first, one full again is the same as none and is dropped, and past ``max_keys`` the least
recently used goes even if it is not full.  A lock makes a check-and-take atomic, since
synchronous routes run on a thread pool."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_KEYS = 50_000  # ~100 bytes each: a few MB at most


def now() -> float:
    """The buckets' clock (seconds, monotonic); tests replace it to move time on."""
    return time.monotonic()


class Buckets:
    def __init__(self, capacity: int, period_s: float = 60.0, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] | None = None):
        if capacity < 1 or period_s <= 0 or max_keys < 1:
            raise ValueError(f"capacity {capacity}, period_s {period_s} and max_keys {max_keys} must be positive")
        self.capacity = capacity
        self.period_s = float(period_s)
        self.interval = self.period_s / capacity  # what one take costs, in seconds of refill
        self.max_keys = max_keys
        self._clock = clock
        self._full_at: OrderedDict[Hashable, float] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def clock(self) -> float:
        return (self._clock or now)()

    def __len__(self) -> int:
        return len(self._full_at)

    def take(self, *keys: Hashable) -> float:
        """Take one token from each of ``keys``' buckets if every one has a token, and return 0;
        otherwise take none and return the seconds until every one will have one."""
        with self._lock:
            at = self.clock()
            self._evict(at)
            full_at = [max(self._full_at.get(key, at), at) for key in keys]
            wait = max((self._wait(f, at) for f in full_at), default=0.0)
            if wait > 0:
                return wait
            for key, f in zip(keys, full_at):
                self._full_at[key] = f + self.interval
                self._full_at.move_to_end(key)
            while len(self._full_at) > self.max_keys:
                self._full_at.popitem(last=False)
            return 0.0

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key``'s bucket has a token (0: it has one now); takes nothing."""
        with self._lock:
            at = self.clock()
            return max(0.0, self._wait(self._full_at.get(key, at), at))

    def _wait(self, full_at: float, at: float) -> float:
        # a take is allowed while the bucket would be full again within a period, less one take
        return full_at - (self.period_s - self.interval) - at

    def _evict(self, at: float) -> None:
        """Drop the buckets that are full again, oldest use first (a period unused means full)."""
        while self._full_at:
            key, full_at = next(iter(self._full_at.items()))
            if full_at > at:
                return
            del self._full_at[key]


class RecentKeys:
    """A bounded set of keys, the least recently added dropped first past ``max_keys``."""

    def __init__(self, max_keys: int = MAX_KEYS):
        self.max_keys = max_keys
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._keys.pop(key, None)
