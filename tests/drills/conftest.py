"""The drills' cluster: real worker processes (``descent worker``, Celery solo pool) on a scratch
PostgreSQL database and a private Redis, with the default timings (``stale_heartbeat_s`` 10 s,
``heartbeat_s`` 5 s, ``requeue_after_s`` 60 s): what is drilled is what ships."""

from __future__ import annotations

import pytest

from tests.services import scratch_database
from tests.worker.test_celery_worker import Cluster, RedisServer, _free_port


@pytest.fixture
def cluster(tmp_path):
    redis = RedisServer(_free_port())
    redis.start()
    try:
        with scratch_database() as database_url:
            cluster = Cluster(database_url, redis, tmp_path)
            for name in ("DESCENT_HEARTBEAT_S", "DESCENT_STALE_HEARTBEAT_S", "DESCENT_REQUEUE_AFTER_S"):
                cluster.env.pop(name)
            try:
                yield cluster
            finally:
                cluster.stop()
    finally:
        redis.stop()
