"""The app factory: no torch or worker import, refusal on an unmigrated database, health, docs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from fastapi.testclient import TestClient

from api.app import NotMigratedError, create_app
from core.settings import Settings
from store.migrate import upgrade
from tests.identity import TEST_HOSTS

API = "/api/v1"


def test_api_builds_without_torch_or_worker(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["worker"] = None
        from store.migrate import upgrade
        from core.settings import Settings
        from api.app import create_app
        settings = Settings(data_dir={str(tmp_path)!r})
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.resolved_database_url)
        app = create_app(settings, reconcile_interval_s=0)
        assert app.openapi()["paths"]
        assert not any(m == "torch" or m.startswith(("torch.", "worker")) for m in sys.modules if sys.modules[m])
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_unmigrated_database_is_refused_naming_the_command(tmp_path):
    settings = Settings(data_dir=tmp_path, allowed_hosts=TEST_HOSTS)
    with pytest.raises(NotMigratedError, match="descent migrate"):
        create_app(settings)
    upgrade(settings.resolved_database_url)
    app = create_app(settings, reconcile_interval_s=0, broker_check=lambda: None)
    with TestClient(app) as c:
        assert c.get(f"{API}/health").json()["status"] == "ok"


def test_cli_migrate_then_api_check(tmp_path):
    env = {"DESCENT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "descent.cli", "migrate"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "database at migration" in run.stdout


def _failing():
    raise ConnectionError("broker down")


@pytest.mark.parametrize("broker_check, code, broker_ok", [(lambda: None, 200, True), (_failing, 503, False)])
def test_health_says_ok_to_anyone_what_failed_to_users_and_why_to_admins(settings, session_factory, broker_check,
                                                                         code, broker_ok):
    from tests.identity import admin_token, bearer, default_project_id, make_user, token_for

    app = create_app(settings, session_factory=session_factory, enqueuer=lambda *a: None, reconcile_interval_s=0,
                     broker_check=broker_check)
    with session_factory() as s:
        user = token_for(s, make_user(s, "viewer", roles={default_project_id(s): "viewer"}))
        s.commit()
    status = "ok" if broker_ok else "degraded"
    with TestClient(app) as c:
        anonymous = c.get(f"{API}/health")
        signed_in = c.get(f"{API}/health", headers=bearer(user))
        admin = c.get(f"{API}/health", headers=bearer(admin_token(session_factory)))
    assert {r.status_code for r in (anonymous, signed_in, admin)} == {code}
    assert anonymous.json() == {"status": status}
    disk = {"data_dir_writable": True}  # and its free bytes (tests/api/test_health.py)
    assert signed_in.json().items() >= {"status": status, "database": True, "broker": broker_ok, **disk}.items()
    assert "broker_error" not in signed_in.json() and "data_dir_error" not in signed_in.json()
    assert admin.json().items() >= {"status": status, "database": True, "broker": broker_ok, **disk,
                                    **({} if broker_ok else {"broker_error": "broker down"})}.items()


def test_health_reaches_real_redis_and_the_sqlite_broker(tmp_path):
    from api.health import check_broker
    from tests.services import redis_url

    check_broker(Settings(data_dir=tmp_path, broker_url=redis_url(0)))
    check_broker(Settings(data_dir=tmp_path))
    with pytest.raises(Exception):  # noqa: B017 - whatever kombu raises for a closed port
        check_broker(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0"))


def test_openapi_and_docs_are_served(client):
    assert client.get("/openapi.json").json()["info"]["title"] == "Descent"
    assert client.get(f"{API}/openapi.json").status_code == 200
    assert client.get(f"{API}/docs").status_code == 200
    redirected = client.get("/docs")  # the README's short address
    assert redirected.status_code == 200 and redirected.url.path == f"{API}/docs"


@pytest.mark.parametrize("path, key", [("/solvers", "sgd"), ("/schedulers", "constant"), ("/architectures", "mlp")])
def test_catalog_lists_entries_with_json_schema(client, path, key):
    items = {i["name"]: i for i in client.get(API + path).json()}
    assert key in items
    schema = items[key]["hyperparameters"]
    assert schema["type"] == "object" and "properties" in schema


def _body_from(schema: dict) -> dict:
    """What a form rendered from a JSON Schema posts when nothing is changed: every default."""
    return {key: prop["default"] for key, prop in schema["properties"].items() if "default" in prop}


def test_solver_catalog_publishes_the_experiment_body_names(client):
    from core.spec.experiment import SOLVER_MODELS

    items = client.get(f"{API}/solvers").json()
    models = {m.model_fields["name"].annotation.__args__[0]: m for m in SOLVER_MODELS}
    assert {i["name"] for i in items} == set(models)
    for item in items:
        fields = item["experiment_fields"]
        assert set(fields["properties"]) == set(models[item["name"]].model_fields) - {"name"}, item["name"]
        assert "lr" not in fields["properties"] and "base_lr" in fields["properties"]
        assert fields["properties"]["base_lr"]["title"] == "base_lr"
        assert "lr" in item["hyperparameters"]["properties"]  # the constructor's names stay as they were


def test_a_body_built_from_the_published_solver_schema_validates(client, iris_split, enqueued):
    for item in client.get(f"{API}/solvers").json():
        solver = {"name": item["name"], **_body_from(item["experiment_fields"])}
        body = {"name": item["name"], "split_id": iris_split["id"], "architecture": {"name": "linear"},
                "solver": solver}
        r = client.post(f"{API}/experiments", json=body)
        assert r.status_code == 201, (item["name"], r.text)
        assert r.json()["spec"]["solver"] == solver
    # the constructor's names are not the body's: that is why experiment_fields exists
    sgd = next(i for i in client.get(f"{API}/solvers").json() if i["name"] == "sgd")
    r = client.post(f"{API}/experiments", json={
        "name": "x", "split_id": iris_split["id"], "architecture": {"name": "linear"},
        "solver": {"name": "sgd", **_body_from(sgd["hyperparameters"])},
    })
    assert r.status_code == 422 and ["body", "solver", "sgd", "lr"] in [d["loc"] for d in r.json()["detail"]]
