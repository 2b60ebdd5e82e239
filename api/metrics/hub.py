"""The event streams of one api process: caps on how many are open, and one poll loop per
experiment however many streams watch it.

Each stream used to poll the database with a session of its own every half second, so 300 of
them held every pooled connection and a plain GET waited minutes for one.  Now:

- **Caps.**  A stream takes a slot before it starts: at most ``DESCENT_MAX_STREAMS_PER_USER``
  per user and ``DESCENT_MAX_STREAMS`` in all; past either, 429 with ``Retry-After`` naming the
  limit.  The slot is given back however the stream ends: the run ended, the client went away,
  or an error.
- **One poller per experiment.**  Every subscriber has a cursor (the last step it was sent of
  each series).  Each interval the poller makes one read in one session, in the threadpool:
  for each distinct cursor among its subscribers (in the steady state, one) the points after
  it, up to each series' last stored step.  Subscribers at the same cursor share the read and
  the event's text.  One that joins mid-run starts at the beginning; while it is behind, its
  reads follow each other without waiting (as much as ``POLL_LIMIT`` points a series each), and
  once it reaches the last stored steps its cursor equals the others' and it joins their reads.
- **Slow subscribers.**  A subscriber holds at most ``QUEUE_EVENTS`` events waiting to be sent;
  while it is full the poller reads nothing for it, so its cursor stays where it was, and once
  it has drained it catches up from the database like a subscriber that has just joined.
  Memory per subscriber is bounded and nothing is dropped: every point still goes out exactly
  once, in step order.
- **Many experiments.**  At most half the pool's connections (``DESCENT_DB_POOL_SIZE`` // 2,
  at least one) serve pollers at once; the other pollers' reads wait their turn, so streams on
  many experiments slow down together instead of taking the connections requests need.
- The poller stops when its last subscriber leaves or the run ends (or is deleted)."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.limits.errors import TooManyRequests
from api.metrics.stream import (
    DELETED,
    KEEPALIVE,
    POLL_LIMIT,
    Cursor,
    event_text,
    is_behind,
    is_final,
    read_updates,
)

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
QUEUE_EVENTS = 4  # events one subscriber may have waiting before the poller skips it
CURSORS_PER_READ = 8  # distinct cursors read in one session: keeps one read short
KEEPALIVE_S = 15.0
RETRY_AFTER_S = 5

_HUB_LOCK = threading.Lock()


class Subscriber:
    """One open stream: its cursor, its last status sent, and its waiting events (None ends it)."""

    def __init__(self, wake: asyncio.Event, queue_events: int):
        self.cursor: Cursor = {}
        self.last_status: dict | None = None
        self.behind = True  # it has points to read without waiting (a new one: its first read)
        self.served = -1  # the poll that last read for it: the least recently served go first
        self.items: deque[str | None] = deque()
        self.ready = asyncio.Event()
        self.wake = wake
        self.queue_events = queue_events

    @property
    def has_room(self) -> bool:
        return len(self.items) < self.queue_events

    def put(self, item: str | None) -> None:
        self.items.append(item)
        self.ready.set()

    async def next(self, keepalive_s: float) -> str | None:
        if not self.items:
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), keepalive_s)
            except TimeoutError:
                return KEEPALIVE
        item = self.items.popleft()
        if self.behind and self.has_room:
            self.wake.set()  # room again: the poller may read for it now
        return item


class ExperimentPoller:
    """The poll loop of one experiment, an asyncio task on the loop its first subscriber came on."""

    def __init__(self, hub: StreamHub, experiment_id: int):
        self.hub, self.experiment_id = hub, experiment_id
        self.subscribers: dict[Subscriber, None] = {}  # in the order they came
        self.wake = asyncio.Event()
        self.polls = 0
        self.loop = asyncio.get_running_loop()
        self.next_poll = self.loop.time()
        self.task = self.loop.create_task(self._run(), name=f"descent-stream-{experiment_id}")

    def add(self) -> Subscriber:
        subscriber = Subscriber(self.wake, self.hub.queue_events)
        self.subscribers[subscriber] = None
        self.wake.set()
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber, None)
        if not self.subscribers:
            self.wake.set()  # the loop ends now rather than after its sleep

    async def _run(self) -> None:
        try:
            while self.subscribers:
                self.wake.clear()
                now = self.loop.time()
                due = now >= self.next_poll
                if due:
                    self.next_poll = now + self.hub.interval_s
                # the interval's read for every subscriber with room; between them, those behind
                chosen = [s for s in self.subscribers if s.has_room and (due or s.behind)]
                if chosen and not await self._poll(chosen):
                    self.next_poll = self.loop.time() + self.hub.interval_s
                    await self._sleep()
                    continue
                if not any(s.behind and s.has_room for s in self.subscribers):
                    await self._sleep()
        except Exception:  # a bug here must end its streams (clients reconnect), not leave them hanging
            log.exception("the poller of experiment %s failed", self.experiment_id)
            for s in self.subscribers:
                s.put(None)
            self.subscribers.clear()
        finally:
            self.hub._forget(self)

    async def _sleep(self) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), max(0.0, self.next_poll - self.loop.time()))
        except TimeoutError:
            pass

    async def _poll(self, chosen: list[Subscriber]) -> bool:
        """One read for ``chosen`` (their distinct cursors, least recently served first), handed
        out; False when the database could not be read (tried again after an interval)."""
        groups: dict[tuple, list[Subscriber]] = {}
        for s in sorted(chosen, key=lambda s: s.served):
            groups.setdefault(tuple(sorted(s.cursor.items())), []).append(s)
        keys = list(groups)[:CURSORS_PER_READ]
        try:
            async with self.hub.read_gate():
                status, heads, results = await run_in_threadpool(
                    read_updates, self.hub.factory, self.experiment_id, [dict(k) for k in keys], self.hub.limit)
        except Exception:  # a busy pool or a dropped connection must not end the streams
            log.warning("stream of experiment %s: reading its updates failed", self.experiment_id, exc_info=True)
            return False
        self.polls += 1
        if status is None:
            deleted = event_text("status", DELETED)
            for s in self.subscribers:
                s.put(deleted)
                s.put(None)
            self.subscribers.clear()
            return True
        status_text = None
        for key, (new, cursor) in zip(keys, results):
            metrics_text = event_text("metrics", new) if new else None
            behind = is_behind(cursor, heads)
            for s in groups[key]:
                if s not in self.subscribers:
                    continue  # it left while we read
                s.served, s.cursor, s.behind = self.polls, cursor, behind
                if metrics_text is not None:
                    s.put(metrics_text)
                if behind:
                    continue  # its status goes out once its points have
                if status != s.last_status:
                    status_text = status_text or event_text("status", status)
                    s.put(status_text)
                    s.last_status = status
                if is_final(status):
                    s.put(None)
                    self.remove(s)
        return True


class EventStreamResponse(StreamingResponse):
    """An event stream that gives its slot back however it ends (and once only)."""

    def __init__(self, events: AsyncIterator[str], release: Callable[[], None]):
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._release = release
        weakref.finalize(self, release)  # a response dropped before it was sent

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self.body_iterator.aclose()  # leaves its poller even if the client left mid-send
            finally:
                self._release()


class StreamHub:
    """The caps and the pollers of one api (``hub_for(app)``)."""

    def __init__(self, factory, *, max_streams: int, max_streams_per_user: int, read_slots: int = 1,
                 interval_s: float = POLL_INTERVAL_S, limit: int = POLL_LIMIT, queue_events: int = QUEUE_EVENTS,
                 keepalive_s: float = KEEPALIVE_S):
        """``read_slots``: pollers reading at once (each holds a database connection while it
        reads), so the pollers of many experiments leave the rest of the pool to requests."""
        self.factory = factory
        self.max_streams, self.max_streams_per_user, self.read_slots = max_streams, max_streams_per_user, read_slots
        self.interval_s, self.limit, self.queue_events, self.keepalive_s = interval_s, limit, queue_events, keepalive_s
        self._lock = threading.Lock()  # slots are taken in the threadpool, given back on the loop
        self._open = 0
        self._by_user: Counter[int] = Counter()
        self._pollers: dict[int, ExperimentPoller] = {}  # touched on the event loop only
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    @property
    def open_streams(self) -> int:
        return self._open

    def polling(self) -> dict[int, int]:
        """Experiment id -> subscribers, for each experiment being polled."""
        return {eid: len(p.subscribers) for eid, p in self._pollers.items()}

    def open(self, experiment_id: int, user_id: int) -> EventStreamResponse:
        """The stream of ``experiment_id`` (access already checked), or 429 past a cap."""
        return EventStreamResponse(self._events(experiment_id), self._admit(user_id))

    def _admit(self, user_id: int) -> Callable[[], None]:
        with self._lock:
            if self._by_user[user_id] >= self.max_streams_per_user:
                raise TooManyRequests(
                    f"you already have {self.max_streams_per_user} event streams open, the most one user may "
                    f"(DESCENT_MAX_STREAMS_PER_USER): close one (a dashboard tab) and retry", RETRY_AFTER_S)
            if self._open >= self.max_streams:
                raise TooManyRequests(
                    f"this api already serves {self.max_streams} event streams, its limit (DESCENT_MAX_STREAMS): "
                    "retry later", RETRY_AFTER_S)
            self._open += 1
            self._by_user[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._open -= 1
                self._by_user[user_id] -= 1
                if not self._by_user[user_id]:
                    del self._by_user[user_id]

        return release

    async def _events(self, experiment_id: int) -> AsyncIterator[str]:
        poller = self._poller(experiment_id)
        subscriber = poller.add()
        try:
            while (item := await subscriber.next(self.keepalive_s)) is not None:
                yield item
        finally:
            poller.remove(subscriber)

    def read_gate(self) -> asyncio.Semaphore:
        """The semaphore of ``read_slots``, on the running loop."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Semaphore(self.read_slots))
        return self._gate[1]

    def _poller(self, experiment_id: int) -> ExperimentPoller:
        poller = self._pollers.get(experiment_id)
        if poller is None or poller.task.done() or poller.loop is not asyncio.get_running_loop():
            poller = self._pollers[experiment_id] = ExperimentPoller(self, experiment_id)
        return poller

    def _forget(self, poller: ExperimentPoller) -> None:
        if self._pollers.get(poller.experiment_id) is poller:
            del self._pollers[poller.experiment_id]


def hub_for(app: FastAPI) -> StreamHub:
    """The app's hub, made with its settings on first use (a test may set ``app.state.stream_hub``)."""
    hub = getattr(app.state, "stream_hub", None)
    if hub is None:
        with _HUB_LOCK:
            hub = getattr(app.state, "stream_hub", None)
            if hub is None:
                settings = app.state.settings
                hub = app.state.stream_hub = StreamHub(app.state.session_factory, max_streams=settings.max_streams,
                                                       max_streams_per_user=settings.max_streams_per_user,
                                                       read_slots=max(1, settings.db_pool_size // 2))
    return hub
