"""Who may call what: every operation of the OpenAPI document × every kind of caller × an object
in the caller's project and one in another project, against the status the rule says.

Callers: anonymous, a worker token, a viewer, an editor and an owner of project A, the owner
of project B (so A is "another project" to them), and an instance admin.  Each cell gets
fresh objects (a run to cancel, a member to remove), so cells cannot disturb each other.

``RULES`` names each operation's rule; an operation the api gains without a rule here fails
``test_every_operation_has_a_rule``.  Run on PostgreSQL (the rules do not depend on the
database; the other api tests run on both)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core.auth import at_least
from store.models import Experiment
from tests.api.conformance import attach
from tests.identity import PASSWORD, bearer, make_user, new_project, token_for

API = "/api/v1"
CALLERS = ("anonymous", "worker", "viewer", "editor", "owner", "other_owner", "admin")
# each caller's role in projects A and B
ROLES = {"viewer": ("viewer", None), "editor": ("editor", None), "owner": ("owner", None),
         "other_owner": (None, "owner"), "admin": ("owner", "owner")}

# operation -> (rule, status on success).  Rules:
#   public  anyone;  user  any signed-in user (not a worker);
#   read / edit / own  viewer / editor / owner of the object's project (404 outside it);
#   create  editor of the project named in the body (422 naming the field outside it);
#   report  editor, or a worker token while the run is running;
#   admin  instance admins only (403 to everyone else).
RULES: dict[tuple[str, str], tuple[str, int]] = {
    ("get", "/health"): ("public", 200),
    ("post", "/auth/login"): ("public", 200),
    ("get", "/auth/link"): ("public", 303),
    ("post", "/auth/logout"): ("user", 204),
    ("get", "/me"): ("user", 200),
    ("get", "/projects"): ("user", 200),
    ("post", "/projects"): ("user", 201),
    ("get", "/projects/{project_id}"): ("read", 200),
    ("patch", "/projects/{project_id}/limits"): ("admin", 200),
    ("get", "/projects/{project_id}/members"): ("read", 200),
    ("put", "/projects/{project_id}/members/{username}"): ("own", 200),
    ("delete", "/projects/{project_id}/members/{username}"): ("own", 204),
    ("get", "/tokens"): ("user", 200),
    ("post", "/tokens"): ("user", 201),
    ("delete", "/tokens/{token_id}"): ("user", 204),
    ("get", "/solvers"): ("user", 200),
    ("get", "/schedulers"): ("user", 200),
    ("get", "/architectures"): ("user", 200),
    ("get", "/datasets"): ("user", 200),
    ("post", "/datasets"): ("create", 201),
    ("get", "/datasets/{dataset_id}"): ("read", 200),
    ("delete", "/datasets/{dataset_id}"): ("edit", 204),
    ("post", "/splits"): ("create", 201),
    ("get", "/splits"): ("user", 200),
    ("get", "/splits/{split_id}"): ("read", 200),
    ("delete", "/splits/{split_id}"): ("edit", 204),
    ("post", "/experiments"): ("create", 201),
    ("get", "/experiments"): ("user", 200),
    ("get", "/experiments/{experiment_id}"): ("read", 200),
    ("delete", "/experiments/{experiment_id}"): ("edit", 204),
    ("patch", "/experiments/{experiment_id}"): ("edit", 200),
    ("post", "/experiments/{experiment_id}/cancel"): ("edit", 200),
    ("post", "/experiments/{experiment_id}/clone"): ("edit", 201),
    ("get", "/experiments/{experiment_id}/checkpoint"): ("read", 200),
    ("get", "/experiments/{experiment_id}/model"): ("read", 200),
    ("get", "/experiments/{experiment_id}/metrics"): ("read", 200),
    ("get", "/experiments/{experiment_id}/diagnosis"): ("read", 200),
    ("post", "/experiments/{experiment_id}/metrics"): ("report", 200),
    ("get", "/compare"): ("read", 200),
    ("get", "/experiments/{experiment_id}/stream"): ("read", 200),
    ("get", "/audit"): ("own", 200),
    ("get", "/queue"): ("user", 200),
    ("post", "/studies"): ("create", 201),
    ("post", "/studies/tournament"): ("create", 201),
    ("get", "/studies"): ("user", 200),
    ("get", "/studies/{study_id}"): ("read", 200),
    ("post", "/studies/{study_id}/cancel"): ("edit", 200),
    ("post", "/experiments/{experiment_id}/landscapes"): ("edit", 201),
    ("get", "/experiments/{experiment_id}/landscapes"): ("read", 200),
    ("get", "/landscapes/{landscape_id}"): ("read", 200),
    ("post", "/races"): ("create", 201),
    ("get", "/races"): ("user", 200),
    ("get", "/races/functions"): ("user", 200),
    ("get", "/races/{race_id}"): ("read", 200),
}
NEEDS = {"read": "viewer", "edit": "editor", "own": "owner", "create": "editor", "report": "editor"}


def expected(rule: str, ok: int, caller: str, project: int) -> int:
    if rule == "public":
        return ok
    if caller == "anonymous":
        return 401
    if caller == "worker":
        return ok if rule == "report" else 403
    if rule == "user":
        return ok
    if rule == "admin":
        return ok if caller == "admin" else 403
    role = ROLES[caller][project]
    if role is None:
        return 422 if rule == "create" else 404
    return ok if at_least(role, NEEDS[rule]) else 403


@pytest.fixture
def engine(postgresql_engine):
    return postgresql_engine


@dataclass
class World:
    admin: TestClient
    clients: dict[str, TestClient]
    projects: tuple[int, int]
    splits: tuple[int, int]
    datasets: tuple[int, int]
    session_factory: object
    settings: object
    counter: itertools.count

    def n(self) -> int:
        return next(self.counter)

    def experiment(self, project: int, status: str = "queued") -> int:
        body = {"name": "cell", "split_id": self.splits[project], "architecture": {"name": "linear"},
                "solver": {"name": "sgd"}}
        eid = self.admin.post(f"{API}/experiments", json=body).json()["id"]
        if status != "queued":
            with self.session_factory() as s:
                s.execute(update(Experiment).where(Experiment.id == eid).values(status=status))
                s.commit()
        return eid

    def trained(self, project: int) -> int:
        """A succeeded run with stored weights (the bytes are never read: only the lab worker loads them)."""
        eid = self.experiment(project, "succeeded")
        weights = self.settings.checkpoint_path(eid, "final")
        weights.parent.mkdir(parents=True, exist_ok=True)
        weights.write_bytes(b"weights")
        return eid

    def study_body(self, project: int) -> dict:
        return {"name": "cell", "base": {"name": "cell", "split_id": self.splits[project],
                                         "architecture": {"name": "linear"}, "solver": {"name": "sgd"}},
                "space": {"solver.base_lr": {"type": "float", "low": 0.01, "high": 0.1, "points": 2}},
                "objective": {"metric": "val/loss"}, "strategy": "grid"}

    def study(self, project: int) -> int:
        return _created(self.admin.post(f"{API}/studies", json=self.study_body(project)))

    def race_body(self, project: int) -> dict:
        return {"function": "booth", "steps": 5, "racers": [{"solver": {"name": "sgd"}}],
                "project_id": self.projects[project]}

    def member(self, project: int) -> str:
        name = f"member{self.n()}"
        with self.session_factory() as s:
            make_user(s, name, roles={self.projects[project]: "viewer"})
            s.commit()
        return name


CSV = "a,b,target\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 3}\n" for i in range(30))


@pytest.fixture
def world(app, session_factory, settings, openapi_document):
    a, b = new_project(session_factory, "A"), new_project(session_factory, "B")
    tokens = {}
    with session_factory() as s:
        for caller, (role_a, role_b) in ROLES.items():
            roles = {p: r for p, r in ((a, role_a), (b, role_b)) if r is not None and caller != "admin"}
            user = make_user(s, caller.replace("_", "-"), is_admin=caller == "admin", roles=roles)
            tokens[caller] = token_for(s, user)
        tokens["worker"] = token_for(s, None, kind="worker")
        s.commit()
    clients = {c: TestClient(app, headers=bearer(t)) for c, t in tokens.items()}
    clients["anonymous"] = TestClient(app)
    for c in clients.values():
        attach(c, openapi_document)
    admin = clients["admin"]
    datasets = tuple(_created(admin.post(f"{API}/datasets", data={"name": "d", "target": "target", "project_id": str(p)},
                                         files={"file": ("d.csv", CSV.encode())})) for p in (a, b))
    splits = tuple(_created(admin.post(f"{API}/splits", json={"dataset": "iris", "project_id": p})) for p in (a, b))
    return World(admin, clients, (a, b), splits, datasets, session_factory, settings, itertools.count())


def _created(response) -> int:
    assert response.status_code == 201, response.text
    return response.json()["id"]


def request_for(world: World, method: str, path: str, caller: str, project: int) -> dict:
    """The request of one cell: fresh objects of ``project`` where the operation consumes one."""
    pid = world.projects[project]
    username = caller.replace("_", "-") if caller not in ("anonymous", "worker") else "viewer"
    if path in ("/experiments/{experiment_id}/metrics",) and method == "post":
        eid = world.experiment(project, "running")
        return {"path": path.format(experiment_id=eid),
                "json": {"points": [{"name": "train/loss", "step": 0, "value": 1.0}]}}
    if path == "/experiments/{experiment_id}/landscapes" and method == "post":
        return {"path": path.format(experiment_id=world.trained(project)), "json": {}}
    if path == "/landscapes/{landscape_id}":
        made = world.admin.post(f"{API}/experiments/{world.trained(project)}/landscapes", json={"dims": 1})
        return {"path": f"/landscapes/{_created(made)}"}
    if "{experiment_id}" in path:
        status = "succeeded" if method == "delete" or path.endswith(("/stream", "/checkpoint", "/model")) else "queued"
        eid = world.experiment(project, status)
        if path.endswith(("/checkpoint", "/model")):
            stored = world.settings.checkpoint_path(eid, "final") if path.endswith("/checkpoint") \
                else world.settings.model_path(eid)
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_bytes(b"weights")
        json = {} if path.endswith("/clone") else {"tags": ["cell"]} if method == "patch" else None
        return {"path": path.format(experiment_id=eid), "json": json}
    if method == "delete" and path == "/datasets/{dataset_id}":
        made = world.admin.post(f"{API}/datasets", data={"name": "doomed", "target": "target", "project_id": str(pid)},
                                files={"file": ("d.csv", CSV.encode())})
        return {"path": f"/datasets/{_created(made)}"}
    if method == "delete" and path == "/splits/{split_id}":
        fresh = {"dataset": "iris", "project_id": pid, "seed": 1000 + world.n()}  # not the world's split
        return {"path": f"/splits/{_created(world.admin.post(f'{API}/splits', json=fresh))}"}
    if path == "/races" and method == "post":
        return {"json": world.race_body(project)}
    if path == "/races/{race_id}":
        return {"path": f"/races/{_created(world.admin.post(f'{API}/races', json=world.race_body(project)))}"}
    if "{study_id}" in path:
        return {"path": path.format(study_id=world.study(project))}
    if path == "/studies" and method == "post":
        return {"json": world.study_body(project)}
    if path == "/studies/tournament":
        return {"json": {"base": world.study_body(project)["base"], "solvers": ["sgd"], "points": 2}}
    if path == "/projects/{project_id}/members/{username}":
        return {"path": path.format(project_id=pid, username=world.member(project)),
                "json": {"role": "editor"} if method == "put" else None}
    simple = {
        "/auth/login": {"json": {"username": username, "password": PASSWORD}},
        "/auth/link": {"params": {"code": "spent"}},
        "/projects": {"json": {"name": f"p{world.n()}"}},
        "/projects/{project_id}": {"path": f"/projects/{pid}"},
        "/projects/{project_id}/members": {"path": f"/projects/{pid}/members"},
        "/projects/{project_id}/limits": {"path": f"/projects/{pid}/limits", "json": {"max_active_experiments": 5}},
        "/tokens": {"json": {"name": "cell"}},
        "/datasets/{dataset_id}": {"path": f"/datasets/{world.datasets[project]}"},
        "/splits": {"json": {"dataset": "iris", "project_id": pid, "seed": 1000 + world.n()}},  # a new one: 201
        "/splits/{split_id}": {"path": f"/splits/{world.splits[project]}"},
        "/experiments": {"json": {"name": "new", "split_id": world.splits[project],
                                  "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}},
        "/compare": {"params": {"ids": str(world.experiment(project, "succeeded"))}},
        "/audit": {"params": {"project_id": pid}},
    }
    if path == "/datasets" and method == "post":
        return {"data": {"name": "cell", "target": "target", "project_id": str(pid)}, "files": {"file": ("c.csv", CSV.encode())}}
    if path == "/tokens/{token_id}":
        own = world.clients.get(caller if caller not in ("anonymous", "worker") else "viewer")
        return {"path": f"/tokens/{own.post(f'{API}/tokens', json={'name': 'doomed'}).json()['id']}"}
    request = dict(simple.get(path, {}))
    if method == "get" and path in ("/splits", "/experiments", "/datasets", "/projects", "/tokens"):
        request.pop("json", None)
    return request


def test_every_operation_has_a_rule(app):
    operations = {(method, path[len(API):]) for path, item in app.openapi()["paths"].items() for method in item}
    assert operations == set(RULES)


@pytest.mark.parametrize("operation", sorted(RULES), ids=lambda op: f"{op[0].upper()} {op[1]}")
def test_each_caller_gets_the_status_its_rule_gives(world, operation):
    method, path = operation
    rule, ok = RULES[operation]
    wrong = []
    for caller, project in itertools.product(CALLERS, (0, 1)):
        request = request_for(world, method, path, caller, project)
        url = API + request.pop("path", path)
        response = world.clients[caller].request(method.upper(), url, follow_redirects=False, **{
            k: v for k, v in request.items() if v is not None})
        want = expected(rule, ok, caller, project)
        if response.status_code != want:
            wrong.append(f"{caller} on project {'AB'[project]}: {response.status_code} (want {want}) "
                         f"{response.text[:120]}")
        if response.status_code == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert wrong == []


@pytest.mark.parametrize("caller, sees", [("viewer", "A"), ("other_owner", "B"), ("admin", "AB")])
def test_lists_show_only_the_callers_projects(world, caller, sees):
    made = {name: world.experiment(p) for p, name in enumerate("AB")}
    client = world.clients[caller]
    experiments = {e["id"] for e in client.get(f"{API}/experiments").json()["items"]}
    assert experiments & set(made.values()) == {made[name] for name in sees}
    splits = {s["id"] for s in client.get(f"{API}/splits").json()}
    assert splits == {world.splits["AB".index(name)] for name in sees}
    uploads = {d["id"] for d in client.get(f"{API}/datasets").json() if d["source"] == "upload"}
    assert uploads == {world.datasets["AB".index(name)] for name in sees}
    projects = {p["id"] for p in client.get(f"{API}/projects").json()}
    assert projects >= {world.projects["AB".index(name)] for name in sees}
    assert world.projects[1 - "AB".index(sees[0])] not in projects or sees == "AB"
    only_a = client.get(f"{API}/experiments", params={"project_id": world.projects[0]}).json()["items"]
    assert {e["id"] for e in only_a} & set(made.values()) == ({made["A"]} if "A" in sees else set())
