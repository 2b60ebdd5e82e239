"""The broker contract both ends build their Celery app from: the settings the worker's
guarantees rest on (JSON only, late acks, one prefetched task, re-queue on a lost worker, no
result backend, a Redis visibility timeout longer than any run) for every broker kind."""

from __future__ import annotations

import pytest

from core.queue import QUEUES, celery_config, make_celery, restore_interval_s, send_training
from core.settings import Settings

BROKERS = [
    ("redis", "redis://127.0.0.1:6379/0"),
    ("embedded default (SQLite)", None),
]

GUARANTEES = {
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_serializer": "json",
    "task_acks_late": True,  # a task is acknowledged when it ends, so a crash re-delivers it
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker holds one training, never a backlog
    "task_ignore_result": True,
    "result_backend": None,  # the database holds job state
}


@pytest.mark.parametrize(("kind", "url"), BROKERS, ids=[b[0] for b in BROKERS])
def test_every_broker_gets_the_delivery_guarantees(kind, url, tmp_path):
    settings = Settings(data_dir=tmp_path, broker_url=url)
    config = celery_config(settings)
    for key, value in GUARANTEES.items():
        assert config[key] == value, key
    app = make_celery(settings)
    for key, value in GUARANTEES.items():
        assert app.conf[key] == value, key


@pytest.mark.parametrize(("visibility_s", "restore_s"), [(900, 10.0), (30, 6.0), (5, 1.0), (2, 1.0)])
def test_unacknowledged_messages_come_back_after_the_visibility_timeout_and_are_looked_for_often(
        visibility_s, restore_s, tmp_path):
    """A dead worker's message is handed out again within 1.2 visibility timeouts, not days."""
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0",
                        redis_visibility_timeout=max(5, visibility_s))
    options = celery_config(settings)["broker_transport_options"]
    assert options["visibility_timeout"] == settings.redis_visibility_timeout
    assert options["unacked_restore_interval"] == restore_interval_s(visibility_s) == restore_s
    assert options["unacked_restore_throttle"] == 1
    assert restore_s <= max(1.0, visibility_s / 5)
    assert Settings(data_dir=tmp_path).redis_visibility_timeout == 900


def test_embedded_broker_is_an_sqlite_file_in_the_data_folder(tmp_path, monkeypatch):
    """A message sent through kombu on the configured URL lands in <data folder>/broker.db, also
    when the folder was given relative to a working directory the process has since left."""
    import sqlite3

    from kombu import Connection

    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    config = celery_config(Settings(data_dir="data"))
    monkeypatch.chdir(tmp_path / "data")
    with Connection(config["broker_url"]) as connection:
        queue = connection.SimpleQueue("probe")
        queue.put({"sent": 1})
        queue.close()
    with sqlite3.connect(tmp_path / "data" / "broker.db") as db:
        assert db.execute("SELECT count(*) FROM kombu_message").fetchone() == (1,)
    assert not (tmp_path / "data" / "data").exists()


def test_only_the_two_queues_are_accepted():
    assert QUEUES == ("gpu", "cpu")
    with pytest.raises(ValueError, match="queue"):
        send_training(None, 1, "tpu")


def test_a_publish_is_tried_once_and_bounded_in_time(tmp_path):
    """A frozen Redis accepts the TCP connection and never answers: without socket timeouts a
    publish (and the request that made it) waits forever; the sweep, not the sender, retries."""
    from core.queue import PUBLISH_TIMEOUT_S

    config = celery_config(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0"))
    assert config["task_publish_retry"] is False
    assert config["broker_connection_timeout"] == PUBLISH_TIMEOUT_S <= 2
    options = config["broker_transport_options"]
    assert options["socket_timeout"] == options["socket_connect_timeout"] == PUBLISH_TIMEOUT_S


def test_a_broker_that_refuses_the_connection_raises_broker_unavailable_at_once(tmp_path):
    import socket
    import time

    from core.queue import BrokerUnavailable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_celery(Settings(data_dir=tmp_path, broker_url=f"redis://127.0.0.1:{port}/0"))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="experiment 7"):
        send_training(app, 7, "cpu")
    assert time.monotonic() - started < 3
