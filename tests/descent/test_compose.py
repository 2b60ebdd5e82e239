"""docker-compose.yml, the Dockerfile and .env.example, checked by a real Compose parser
(Debian's ``docker-compose`` or the ``docker compose`` v2 plugin; no Docker engine needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from core.settings import Settings
from tests.services import require_executable

ROOT = Path(__file__).resolve().parents[2]
# Variables read only by docker compose itself, or by the client, not by Settings.
COMPOSE_ONLY = {"DESCENT_PORT", "DESCENT_WORKER_GPUS", "DESCENT_ADMIN_PASSWORD"}
CLIENT_ONLY = {"DESCENT_URL", "DESCENT_TOKEN"}
# Settings that mean nothing in the compose topology (it uses Redis, not a server-free broker).
NOT_FOR_COMPOSE = {"DESCENT_BROKER_POLL_INTERVAL"}
ADMIN_PASSWORD = "compose-test-password"
SECRETS = {"DESCENT_ADMIN_PASSWORD": ADMIN_PASSWORD, "POSTGRES_PASSWORD": "pg-test-password",
           "REDIS_PASSWORD": "redis-test-password"}


def _compose_command() -> list[str]:
    """The `docker compose` v2 plugin when there is one, else Debian's `docker-compose`, which
    scripts/test-services.sh installs; a machine with neither fails here rather than skipping."""
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:
        return ["docker", "compose"]
    return [require_executable("docker-compose")]


def run_compose_config(*profiles: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``docker compose config`` with only ``env`` of the DESCENT_/POSTGRES_ variables set."""
    args = [a for p in profiles for a in ("--profile", p)]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("DESCENT_", "POSTGRES_", "REDIS_"))}
    run_env.update(env)
    return subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), *args, "config"],
        capture_output=True, text=True, cwd=ROOT, env=run_env, timeout=120,
    )


@pytest.fixture(scope="module")
def compose_config():
    def config(*profiles: str, env: dict[str, str] | None = None) -> dict:
        out = run_compose_config(*profiles, env={**SECRETS, **(env or {})})
        assert out.returncode == 0, out.stderr
        return yaml.safe_load(out.stdout)

    return config


def test_services_and_profiles(compose_config):
    services = compose_config("cpu")["services"]
    assert set(services) == {"postgres", "redis", "api", "worker", "worker-cpu", "worker-lab"}
    assert services["worker-lab"]["command"][:4] == ["descent", "worker", "--queue", "lab"]
    # only the CPU worker is opt-in (v1 lists every service with its profiles, v2 filters them)
    assert {name for name, s in services.items() if s.get("profiles")} == {"worker-cpu"}
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert "worker-cpu" not in compose_config()["services"] or compose_config()["services"]["worker-cpu"]["profiles"]


def test_database_has_a_volume_and_a_healthcheck_the_api_waits_for(compose_config):
    services = compose_config()["services"]
    pg = services["postgres"]
    assert any(v["target"] == "/var/lib/postgresql/data" if isinstance(v, dict) else
               v.split(":")[1] == "/var/lib/postgresql/data" for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    api = services["api"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    command = " ".join(api["command"])
    assert command.index("descent migrate") < command.index("descent user create admin") < command.index("descent api")


def test_gpu_worker_reserves_nvidia_gpus_and_cpu_worker_takes_the_cpu_queue(compose_config):
    services = compose_config("cpu")["services"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "--queue gpu" in " ".join(services["worker"]["command"])
    assert " ".join(services["worker-cpu"]["command"]).endswith("--queue cpu")
    assert "deploy" not in services["worker-cpu"]


def test_every_process_gets_the_same_database_broker_and_shared_data_volume(compose_config):
    services = compose_config("cpu")["services"]
    env = {name: services[name]["environment"] for name in ("api", "worker", "worker-cpu")}
    # the api alone gets the admin's password (it creates the admin); the workers need no token
    assert env["api"] == {**env["worker"], "DESCENT_ADMIN_PASSWORD": ADMIN_PASSWORD}
    assert env["worker"] == env["worker-cpu"]
    assert not any(k.endswith(("PASSWORD", "_TOKEN")) for k in env["worker"])  # no secret (a limit may name tokens)
    assert env["api"]["DESCENT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["api"]["DESCENT_BROKER_URL"] == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    for name in env:
        mounts = services[name]["volumes"]
        assert any((m["source"], m["target"]) == ("descent-data", "/data") if isinstance(m, dict)
                   else m.startswith("descent-data:/data") for m in mounts)


def test_environment_overrides_reach_the_services(compose_config):
    services = compose_config(env={"POSTGRES_PASSWORD": "s3cret", "DESCENT_WORKER_GPUS": "0,1"})["services"]
    assert ":s3cret@postgres:" in services["api"]["environment"]["DESCENT_DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert "--gpus 0,1" in " ".join(services["worker"]["command"])


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_each_secret_is_required_and_has_no_default(missing):
    out = run_compose_config(env={k: v for k, v in SECRETS.items() if k != missing})
    assert out.returncode != 0 and f"set {missing}" in out.stderr, out.stderr


def test_redis_requires_the_password_the_services_send(compose_config):
    services = compose_config()["services"]
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"]) and "REDIS_PASSWORD" in " ".join(redis["command"])
    assert redis["environment"]["REDIS_PASSWORD"] == SECRETS["REDIS_PASSWORD"]
    assert "REDIS_PASSWORD" in " ".join(redis["healthcheck"]["test"])


def test_the_api_creates_the_admin_from_the_password_once_then_serves(compose_config):
    api = compose_config(env={"DESCENT_ADMIN_PASSWORD": "s3cret-admin"})["services"]["api"]
    command = " ".join(api["command"])
    create = command[command.index("descent user create"):command.index("&& exec descent api")]
    # from the variable's name, never the password on a command line; a restart keeps the user
    assert create.split() == ["descent", "user", "create", "admin", "--admin", "--password-env",
                              "DESCENT_ADMIN_PASSWORD", "--if-missing"]
    assert "s3cret-admin" not in command
    assert api["environment"]["DESCENT_ADMIN_PASSWORD"] == "s3cret-admin"


@pytest.mark.parametrize("env, published, allowed", [
    ({}, ("127.0.0.1", "8000"), "localhost,127.0.0.1"),
    ({"DESCENT_PORT": "9000", "DESCENT_ALLOWED_HOSTS": "gpu-box.example"}, ("127.0.0.1", "9000"), "gpu-box.example"),
])
def test_the_api_is_published_on_loopback_and_answers_only_the_allowed_hosts(compose_config, env, published,
                                                                             allowed):
    services = compose_config("cpu", env=env)["services"]
    (port,) = services["api"]["ports"]
    if isinstance(port, dict):  # the v2 plugin's long form
        assert (port["host_ip"], str(port["published"]), port["target"]) == (*published, 8000)
    else:  # Debian's docker-compose: "127.0.0.1:8000:8000/tcp"
        assert port.split("/")[0] == f"{published[0]}:{published[1]}:8000"
    for name in ("api", "worker", "worker-cpu"):
        assert services[name]["environment"]["DESCENT_ALLOWED_HOSTS"] == allowed


def _dockerfile_stages() -> dict[str, str]:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    parts = re.split(r"^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", text, flags=re.M)
    return {parts[i + 1]: parts[i + 2] for i in range(1, len(parts), 3)} | {
        f"{parts[i + 1]}:parent": parts[i] for i in range(1, len(parts), 3)
    }


def test_images_share_one_base_and_only_the_worker_has_cuda_torch():
    stages = _dockerfile_stages()
    assert stages["api:parent"] == stages["worker:parent"] == "base"
    assert "torch" not in stages["base"] and "torch" not in stages["api"]
    pinned = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                  ["optional-dependencies"]["worker"] if d.startswith("torch=="))
    assert f"TORCH_VERSION={pinned.split('==')[1]}" in stages["worker"]
    index = re.search(r"TORCH_INDEX_URL=(\S+)", stages["worker"]).group(1)
    assert re.search(r"/whl/cu\d+$", index), index


def test_the_base_image_copies_every_package_the_project_installs():
    """``pip install .`` in the image finds only what was copied: a package left out installs
    nothing and the services fail at their first import."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", _dockerfile_stages()["base"], flags=re.M))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^#?\s*(DESCENT_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    settings = {f"DESCENT_{name.upper()}" for name in Settings.model_fields}
    assert settings <= documented, f"undocumented: {sorted(settings - documented)}"
    unread = documented - settings - COMPOSE_ONLY - CLIENT_ONLY
    assert not unread, f"not read by anything: {sorted(unread)}"


def test_every_setting_reaches_the_containers(compose_config):
    """A variable set in .env must reach the api and the workers, or setting it does nothing."""
    services = compose_config("cpu")["services"]
    settings = {f"DESCENT_{name.upper()}" for name in Settings.model_fields} - NOT_FOR_COMPOSE
    for name in ("api", "worker", "worker-cpu"):
        missing = settings - set(services[name]["environment"])
        assert not missing, f"{name} never sees {sorted(missing)}"


def test_gpu_worker_runs_one_process_per_reserved_card_by_default(compose_config):
    assert "--gpus all" in " ".join(compose_config()["services"]["worker"]["command"])


def test_env_example_defaults_are_the_settings_defaults(tmp_path):
    values = dict(re.findall(r"^#\s*(DESCENT_[A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), flags=re.M))
    for name, field in Settings.model_fields.items():
        key = f"DESCENT_{name.upper()}"
        if field.default is None:
            continue  # example shows a production value for the optional URLs
        parsed = Settings(_env_file=None, **{name: values[key]})
        # the field's own default, not this process's environment (the tests set some variables)
        default = Settings(_env_file=None, **{name: field.get_default(call_default_factory=True)})
        assert getattr(parsed, name) == getattr(default, name), key
