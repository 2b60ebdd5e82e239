"""The broker contract shared by the api (which sends) and the worker (which consumes), so the
api never imports the worker: task name, queue names and the Celery configuration.

Tasks carry an experiment id only; the database, not a result backend, holds job state.

A publish is bounded: it is tried once and waits at most ``PUBLISH_TIMEOUT_S`` to connect and
``PUBLISH_TIMEOUT_S`` for the broker's answer, so a frozen broker (a Redis that accepts the TCP
connection and never answers) costs a sender about a second, not forever.  A send that fails
raises :class:`BrokerUnavailable`; the experiment stays ``queued`` in the database and the re-send
sweep (``store.repositories.requeue``) sends it once the broker answers."""

from __future__ import annotations

from typing import Any

from core.settings import Settings

TRAIN_TASK = "descent.train"
QUEUES = ("gpu", "cpu")
# the optimizer lab's short jobs (races on 2-D test functions, loss landscapes) have a queue of their
# own, served by a lab worker (``descent worker --queue lab``), so they never wait behind a training
LAB_QUEUE = "lab"
RACE_TASK = "descent.lab.race"
LANDSCAPE_TASK = "descent.lab.landscape"
LAB_TASKS = (RACE_TASK, LANDSCAPE_TASK)
# a lab job still running this long after a lab worker took it is abandoned (its worker died):
# the api's sweep marks it failed, so its page says to ask again instead of waiting forever
LAB_JOB_LIMIT_S = 600.0
# seconds a publish waits to connect, and again for the broker's reply (a module constant until a setting exists)
PUBLISH_TIMEOUT_S = 1.0


class BrokerUnavailable(RuntimeError):
    """The broker did not take the message in time (down, frozen or unreachable)."""


def restore_interval_s(visibility_timeout: float) -> float:
    """How often a worker looks for messages unacknowledged past the visibility timeout: a fifth
    of it, at most every 10 s, so a dead worker's message is handed out again (and dropped by
    the claim) at most 1.2 visibility timeouts after its delivery."""
    return max(1.0, min(10.0, visibility_timeout / 5))


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for both ends: JSON only, late acks, one task prefetched, re-queue when
    a worker dies.

    On Redis a delivered message stays "unacknowledged" until its task ends; one whose worker
    died would stay there, and one of a run still training outlives it too.  Redis hands such a
    message out again after ``redis_visibility_timeout`` (15 minutes by default, not days): the
    database's claim makes every later delivery of a finished or live run a no-op that is
    acknowledged at once, so a message never runs a training twice and never lingers."""
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
        # one try per publish: the sweep, not the sender's thread, retries a message the broker did not take
        "task_publish_retry": False,
        "broker_connection_timeout": PUBLISH_TIMEOUT_S,
    }
    if url.startswith(("redis://", "rediss://")):
        # the socket timeouts bound synchronous commands (a publish); the worker's BRPOP runs in
        # kombu's event loop, which they do not touch (its own health check drops a silent one)
        config["broker_transport_options"] = {
            "visibility_timeout": settings.redis_visibility_timeout,
            # every worker looks for such messages this often (kombu's default is every ~100 s)
            "unacked_restore_interval": restore_interval_s(settings.redis_visibility_timeout),
            "unacked_restore_throttle": 1,
            "socket_timeout": PUBLISH_TIMEOUT_S,
            "socket_connect_timeout": PUBLISH_TIMEOUT_S,
        }
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
    transaction that made the experiment ``queued`` has committed.  Raises
    :class:`BrokerUnavailable` when the broker did not take the message within the bound."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; known: {QUEUES}")
    from kombu.exceptions import OperationalError

    try:
        app.send_task(TRAIN_TASK, args=[experiment_id], queue=queue, retry=False)
    except (OperationalError, OSError) as exc:  # kombu wraps the transport's connection errors in OperationalError
        raise BrokerUnavailable(f"the broker did not take experiment {experiment_id}'s message: {exc}") from exc


def send_lab_job(app, task: str, job_id: int) -> None:
    """Enqueue an optimizer-lab job (a race or a landscape) by task name and row id, after the
    transaction that created the row has committed.  Raises :class:`BrokerUnavailable` as
    :func:`send_training` does; the row stays ``queued``."""
    if task not in LAB_TASKS:
        raise ValueError(f"unknown lab task {task!r}; known: {LAB_TASKS}")
    from kombu.exceptions import OperationalError

    try:
        app.send_task(task, args=[job_id], queue=LAB_QUEUE, retry=False)
    except (OperationalError, OSError) as exc:
        raise BrokerUnavailable(f"the broker did not take lab job {task} {job_id}: {exc}") from exc
