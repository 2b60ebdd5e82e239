"""Server-sent events for one experiment: ``status`` when its state or progress changes,
``metrics`` with the points added since the last event (each series with its
``higher_is_better``, as everywhere else); the stream ends when the run ends, after every point
it recorded has been sent.  A stream that has nothing to say for a while sends an SSE comment
line (``: keepalive``), which clients ignore, so a vanished client is noticed.

This module holds what goes over the wire and the one database read behind it
(:func:`read_updates`); :mod:`api.metrics.hub` runs one poll loop per experiment for all its
streams."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, Field, RootModel

from api.metrics.service import series_public
from core.metrics import SeriesPublic
from core.statuses import FINISHED
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
DELETED = {"status": "deleted"}
KEEPALIVE = ": keepalive\n\n"

Cursor = dict[str, int]  # metric name -> the last step sent


def event_text(kind: str, data) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def is_final(status: dict) -> bool:
    return status["status"] in FINISHED


def is_behind(cursor: Cursor, heads: Cursor) -> bool:
    """Whether points up to ``heads`` (each series' last stored step) remain past ``cursor``."""
    return any(cursor.get(name, -1) < head for name, head in heads.items())


def read_updates(factory, experiment_id: int, cursors: Sequence[Cursor], limit: int = POLL_LIMIT
                 ) -> tuple[dict | None, Cursor, list[tuple[dict, Cursor]]]:
    """In one read-only transaction: the run's status (None once it is deleted), the last stored
    step of each series (``heads``), and for each of ``cursors`` the points after it, at most
    ``limit`` per series and none past its head, with the cursor they move it to.

    The status is read before the points, so a finished run's points are all at or below the
    heads; reading no further than the heads makes every cursor that reaches them equal, so the
    streams that read from different positions meet and share the reads that follow."""
    with session_scope(factory) as session:
        read_only(session)
        experiment = experiments_repo.get(session, experiment_id)
        if experiment is None:
            return None, {}, []
        status = {k: getattr(experiment, k) for k in STATUS_FIELDS}
        heads = {s.name: s.last_step for s in repo.summaries(session, [experiment_id])}
        results = []
        for cursor in cursors:
            new: dict[str, SeriesPublic] = {}
            moved = dict(cursor)
            for name, head in heads.items():
                after = cursor.get(name)
                if after is not None and after >= head:
                    continue
                points = [p for p in repo.raw_points(session, experiment_id, name, after_step=after, limit=limit)
                          if p[0] <= head]
                if points:
                    new[name] = series_public(name, [p[0] for p in points], [p[2] for p in points])
                # nothing found below the head (a summary ahead of its points): the cursor moves on anyway
                moved[name] = points[-1][0] if len(points) == limit else head
            results.append((new, moved))
        return status, heads, results
