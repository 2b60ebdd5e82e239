"""The broker contract shared by the api (which sends) and the worker (which consumes), so the
api never imports the worker: task name, queue names and the Celery configuration.

Tasks carry an experiment id only; the database, not a result backend, holds job state."""

from __future__ import annotations

from typing import Any

from core.settings import Settings

TRAIN_TASK = "descent.train"
QUEUES = ("gpu", "cpu")


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for both ends: JSON only, late acks, one task prefetched, re-queue when
    a worker dies, and a Redis visibility timeout longer than the longest run."""
    url = settings.resolved_broker_url
    config: dict[str, Any] = {
        "broker_url": url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "cpu",
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    if url.startswith(("redis://", "rediss://")):
        config["broker_transport_options"] = {"visibility_timeout": settings.redis_visibility_timeout}
    elif url.startswith("sqla+"):
        import kombu.transport.sqlalchemy as sqla

        # this transport hands broker_transport_options to create_engine, so the poll rate is a class attribute
        sqla.Transport.polling_interval = settings.broker_poll_interval
    return config


def make_celery(settings: Settings, name: str = "descent"):
    from celery import Celery

    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


def send_training(app, experiment_id: int, queue: str) -> None:
    """Enqueue a training by task name (the sender needs no worker code). Call only after the
    transaction that made the experiment ``queued`` has committed."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; known: {QUEUES}")
    app.send_task(TRAIN_TASK, args=[experiment_id], queue=queue)
