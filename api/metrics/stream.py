"""Server-sent events for one experiment: ``status`` when its state or progress changes,
``metrics`` with the points added since the last event (each series with its
``higher_is_better``, as everywhere else); the stream ends when the run ends,
after every point it recorded has been sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from pydantic import BaseModel, Field, RootModel
from starlette.concurrency import run_in_threadpool

from api.metrics.service import series_public
from core.metrics import SeriesPublic
from store.db import read_only, session_scope
from store.repositories import experiments as experiments_repo
from store.repositories import metrics as repo

STATUS_FIELDS = ("status", "progress", "epoch", "step", "error", "worker_host", "device", "cancel_requested")


class StreamMetricsEvent(RootModel[dict[str, SeriesPublic]]):
    """The data of an ``event: metrics``: the points each series gained since the last event,
    by metric name (every point is sent exactly once, in step order)."""


class StreamStatusEvent(BaseModel):
    """The data of an ``event: status``, sent when the run's state or progress changes (the
    fields are those of ExperimentPublic); ``{"status": "deleted"}`` alone when the experiment
    was deleted.  The stream ends after the status of a finished run."""

    status: str = Field(description="The run's Status, or `deleted`.")
    progress: float | None = Field(None, description="Fraction of the planned optimizer steps done, 0..1.")
    epoch: int | None = Field(None, description="The epoch the worker last reported.")
    step: int | None = Field(None, description="The optimizer step the worker last reported.")
    error: str | None = Field(None, description="Why a failed run failed.")
    worker_host: str | None = Field(None, description="The host of the worker running it.")
    device: str | None = Field(None, description="The device it trains on (`cpu`, `cuda:0`).")
    cancel_requested: bool | None = Field(None, description="Whether a cancel was asked for.")


STREAM_EVENTS: dict[str, type[BaseModel]] = {"metrics": StreamMetricsEvent, "status": StreamStatusEvent}


# the most points of one series read per poll (bounds the memory of one event)
POLL_LIMIT = 10_000


def _poll(factory, experiment_id: int, last_steps: dict[str, int], limit: int = POLL_LIMIT
          ) -> tuple[dict | None, dict, bool]:
    """(status, new points by series, whether a series may have more than ``limit`` read)."""
    with session_scope(factory) as session:
        read_only(session)
        experiment = experiments_repo.get(session, experiment_id)
        if experiment is None:
            return None, {}, False
        status = {k: getattr(experiment, k) for k in STATUS_FIELDS}
        new: dict[str, dict] = {}
        more = False
        for s in repo.summaries(session, [experiment_id]):
            if s.last_step <= last_steps.get(s.name, -1):
                continue
            points = repo.raw_points(session, experiment_id, s.name, after_step=last_steps.get(s.name), limit=limit)
            if points:
                new[s.name] = series_public(s.name, [p[0] for p in points], [p[2] for p in points])
                last_steps[s.name] = points[-1][0]
            more = more or len(points) >= limit
        return status, new, more


def _event(kind: str, data) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def events(factory, experiment_id: int, interval_s: float = 0.5, limit: int = POLL_LIMIT
                 ) -> AsyncIterator[str]:
    """Poll every ``interval_s``.  A backlog (more than ``limit`` new points of a series, say a
    finished run's whole history) is read ``limit`` points at a time without waiting, and the
    status is reported once it is read, so a finished run's stream ends after its last point."""
    last_steps: dict[str, int] = {}
    last_status = None
    while True:
        status, new, more = await run_in_threadpool(_poll, factory, experiment_id, last_steps, limit)
        if status is None:
            yield _event("status", {"status": "deleted"})
            return
        if new:
            yield _event("metrics", new)
        if more:
            continue
        if status != last_status:
            yield _event("status", status)
            last_status = status
        if status["status"] in ("succeeded", "failed", "cancelled"):
            return
        await asyncio.sleep(interval_s)
