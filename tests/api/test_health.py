"""``/health`` and the data folder, on real disks: a full or read-only folder, or one short of free
space, answers ``degraded`` (503) and says so to signed-in users, why to admins, nothing more to
anyone else; once writes come back it is ``ok`` again.  A database or a broker that accepts the
connection and never answers makes it ``degraded`` within the checks' bound, not a hang."""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from api import health
from api.app import create_app
from core.settings import Settings
from store.db import make_engine, make_sessionmaker
from tests.api.conformance import attach
from tests.drills.disks import REFUSING, full_disk
from tests.identity import TEST_HOSTS, admin_token, bearer, default_project_id, make_user, token_for

API = "/api/v1"


def _answers(app, session_factory, openapi_document):
    """The health answers to an anonymous caller, a signed-in viewer and an admin."""
    with session_factory() as s:
        viewer = token_for(s, make_user(s, f"viewer-{os.urandom(4).hex()}", roles={default_project_id(s): "viewer"}))
        s.commit()
    admin = admin_token(session_factory, f"admin-{os.urandom(4).hex()}")
    with TestClient(app) as c:
        attach(c, openapi_document)
        return [c.get(f"{API}/health", headers=h) for h in ({}, bearer(viewer), bearer(admin))]


def _app(settings, session_factory, broker_check=lambda: None):
    return create_app(settings, session_factory=session_factory, enqueuer=lambda *a: None, reconcile_interval_s=0,
                      broker_check=broker_check)


@pytest.mark.parametrize("kind", list(REFUSING))
def test_a_data_folder_that_refuses_writes_is_degraded_until_writes_come_back(kind, settings, session_factory,
                                                                               openapi_document, tmp_path):
    folder = tmp_path / "data"
    app = _app(settings.model_copy(update={"data_dir": folder}), session_factory)
    with REFUSING[kind](folder) as disk:
        anonymous, viewer, admin = _answers(app, session_factory, openapi_document)
        assert {r.status_code for r in (anonymous, viewer, admin)} == {503}
        assert anonymous.json() == {"status": "degraded"}
        body = viewer.json()
        assert body.keys() == {"status", "database", "broker", "data_dir_writable", "data_dir_free_bytes"}
        assert (body["status"], body["database"], body["broker"], body["data_dir_writable"]) == (
            "degraded", True, True, False)
        if kind == "full":
            assert body["data_dir_free_bytes"] == 0
        why = admin.json()["data_dir_error"]
        assert why.startswith(f"{folder}: ") and any(f"({name})" in why for name in disk.names), why
        assert admin.json()["data_dir_writable"] is False

        disk.restore()
        anonymous, viewer, admin = _answers(app, session_factory, openapi_document)
        assert {r.status_code for r in (anonymous, viewer, admin)} == {200}
        assert anonymous.json() == {"status": "ok"}
        assert viewer.json()["data_dir_writable"] is True and viewer.json()["data_dir_free_bytes"] > 0
        assert "data_dir_error" not in admin.json()
        assert [p.name for p in folder.iterdir() if p.name.startswith(".descent-health-")] == []


def test_a_data_folder_short_of_space_is_degraded_while_still_writable(settings, session_factory, openapi_document,
                                                                        tmp_path):
    folder = tmp_path / "data"
    app = _app(settings.model_copy(update={"data_dir": folder}), session_factory)
    with full_disk(folder, size="1m"):
        filler = next(folder.glob(".filler-*"))
        # give back one page: writable, but far below 1% of the 1 MiB disk (the floor on a disk this small)
        with open(filler, "r+b") as file:
            file.truncate(filler.stat().st_size - 4096)
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        floor = min(health.MIN_FREE_BYTES, int(health.MIN_FREE_FRACTION * 1024 * 1024))
        assert 0 < free < floor
        _, viewer, admin = _answers(app, session_factory, openapi_document)
        assert viewer.status_code == 503
        assert viewer.json() | {"data_dir_free_bytes": None} == {
            "status": "degraded", "database": True, "broker": True, "data_dir_writable": True,
            "data_dir_free_bytes": None}
        assert viewer.json()["data_dir_free_bytes"] == free
        assert admin.json()["data_dir_error"] == f"{folder}: {free} bytes free, below the {floor} a healthy data folder keeps"


def test_a_missing_data_folder_is_judged_by_the_folder_it_would_be_made_in(settings, session_factory, openapi_document,
                                                                            tmp_path):
    app = _app(settings.model_copy(update={"data_dir": tmp_path / "not" / "made" / "yet"}), session_factory)
    anonymous, viewer, _ = _answers(app, session_factory, openapi_document)
    assert anonymous.status_code == 200 and viewer.json()["data_dir_writable"] is True
    assert not (tmp_path / "not").exists()


@contextmanager
def silent_server():
    """A TCP port that accepts connections (the kernel's backlog) and never answers: a server
    that hangs.  Closing it resets the connections still waiting, which ends their clients."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_hanging_broker_is_degraded_within_the_bound(settings, session_factory, openapi_document, tmp_path):
    admin = admin_token(session_factory)
    with silent_server() as port:
        hanging = Settings(data_dir=tmp_path, broker_url=f"redis://127.0.0.1:{port}/0")
        app = _app(settings, session_factory, broker_check=lambda: health.check_broker(hanging))
        with TestClient(app) as c:
            attach(c, openapi_document)
            started = time.monotonic()
            answer = c.get(f"{API}/health", headers=bearer(admin))
            elapsed = time.monotonic() - started
    assert answer.status_code == 503 and elapsed < health.CHECK_TIMEOUT_S + 1.5
    assert (answer.json()["database"], answer.json()["broker"]) == (True, False)
    assert answer.json()["broker_error"], answer.json()


def test_a_hanging_database_is_degraded_within_the_bound(tmp_path, openapi_document):
    settings = Settings(data_dir=tmp_path, allowed_hosts=TEST_HOSTS)
    with silent_server() as port:
        engine = make_engine(f"postgresql://descent@127.0.0.1:{port}/descent")
        app = _app(settings, make_sessionmaker(engine))
        try:
            with TestClient(app) as c:
                attach(c, openapi_document)
                started = time.monotonic()
                # a caller with a token: reading it needs the database, which is what hangs
                answer = c.get(f"{API}/health", headers=bearer("not-checked"))
                elapsed = time.monotonic() - started
        finally:
            engine.dispose()
    assert answer.status_code == 503 and answer.json() == {"status": "degraded"}
    assert health.CHECK_TIMEOUT_S - 0.1 < elapsed < health.CHECK_TIMEOUT_S + 1.5


def test_a_sqlite_database_busy_with_a_writer_is_healthy_at_once(tmp_path, openapi_document):
    """The check only reads: it must not queue behind a writer's lock (a worker writing metrics)."""
    from sqlalchemy import text

    from store.migrate import upgrade

    settings = Settings(data_dir=tmp_path, allowed_hosts=TEST_HOSTS)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as writer:
            writer.begin()  # BEGIN IMMEDIATE: the write lock, held until the end of the block
            writer.execute(text("UPDATE projects SET name = name"))
            with TestClient(_app(settings, make_sessionmaker(engine))) as c:
                attach(c, openapi_document)
                started = time.monotonic()
                answer = c.get(f"{API}/health")
                elapsed = time.monotonic() - started
            writer.rollback()
    finally:
        engine.dispose()
    assert answer.status_code == 200 and elapsed < 1.0, (answer.json(), elapsed)
