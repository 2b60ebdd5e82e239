"""Server-sent events for one experiment: ``status`` when its state or progress changes,
``metrics`` with the points added since the last event; the stream ends when the run ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from store.db import session_scope
from store.repositories import experiments as experiments_repo
from store.repositories import metrics as repo

STATUS_FIELDS = ("status", "progress", "epoch", "step", "error", "worker_host", "device", "cancel_requested")


def _poll(factory, experiment_id: int, last_steps: dict[str, int]) -> tuple[dict | None, dict]:
    with session_scope(factory) as session:
        experiment = experiments_repo.get(session, experiment_id)
        if experiment is None:
            return None, {}
        status = {k: getattr(experiment, k) for k in STATUS_FIELDS}
        new: dict[str, dict] = {}
        for s in repo.summaries(session, [experiment_id]):
            if s.last_step <= last_steps.get(s.name, -1):
                continue
            points = repo.raw_points(session, experiment_id, s.name, after_step=last_steps.get(s.name), limit=10_000)
            if points:
                new[s.name] = {"steps": [p[0] for p in points], "values": [p[2] for p in points]}
                last_steps[s.name] = points[-1][0]
        return status, new


def _event(kind: str, data) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def events(factory, experiment_id: int, interval_s: float = 0.5) -> AsyncIterator[str]:
    last_steps: dict[str, int] = {}
    last_status = None
    while True:
        status, new = await run_in_threadpool(_poll, factory, experiment_id, last_steps)
        if status is None:
            yield _event("status", {"status": "deleted"})
            return
        if new:
            yield _event("metrics", new)
        if status != last_status:
            yield _event("status", status)
            last_status = status
        if status["status"] in ("succeeded", "failed", "cancelled"):
            return
        await asyncio.sleep(interval_s)
