"""A small typed client for Descent's HTTP api, for the CLI, notebooks and tests.  What it
returns is typed by ``descent.client_types`` (``TypedDict``s held to the api's OpenAPI schema).

It speaks HTTP only (httpx) and imports nothing of the server (api, store, worker, optim; only
the torch- and SQL-free ``core.statuses``), so a laptop can drive a remote GPU box::

    from descent.client import Client

    with Client("http://127.0.0.1:8000") as c:   # token: $DESCENT_TOKEN, else the one `descent login` saved
        split = c.create_split("iris", seed=0)
        run = c.submit({"name": "adam", "split_id": split["id"],
                        "architecture": {"name": "mlp"}, "solver": {"name": "adam", "base_lr": 1e-3},
                        "training": {"epochs": 5}})
        done = c.wait(run["id"])
        print(done["status"], c.metrics(run["id"], names=["val/accuracy"]))

Every request carries ``Authorization: Bearer <token>``: the token passed, else
``$DESCENT_TOKEN``, else the one saved for that address (``descent.credentials``).

Each submission (``submit``, ``clone``, ``create_split``, ``upload_dataset``, ``create_study``,
``create_tournament``) carries an
``Idempotency-Key`` of its own and is sent again with that key when the connection fails or a
proxy answers 502/503/504, so a lost response never makes a second run: the api answers the
repeat with the first answer.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from core.diagnosis.findings import DiagnosisPublic
from core.statuses import FINISHED
from descent.client_types import (
    CatalogItem,
    Comparison,
    Dataset,
    Experiment,
    ExperimentListItem,
    ExperimentPage,
    Health,
    Queue,
    SolverItem,
    Split,
    Study,
    StudyPage,
)
from descent.credentials import resolve_token

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"

JSON = dict[str, Any]

IDEMPOTENCY_HEADER = "Idempotency-Key"
# a submission is sent at most this often; the waits between sends double from RETRY_BACKOFF_S
SUBMIT_ATTEMPTS = 4
RETRY_BACKOFF_S = 0.5
MAX_RETRY_WAIT_S = 10.0
# answers that mean the request may not have reached the api (a proxy's) or it was too busy
RETRY_STATUSES = frozenset({502, 503, 504})


class ApiError(Exception):
    """The api answered with an error status; ``detail`` is its JSON ``detail`` (or the body)."""

    def __init__(self, status_code: int, detail: Any, method: str, url: str):
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        super().__init__(f"{method} {url} -> {status_code}: {format_detail(detail)}")


class NotSignedIn(ApiError):
    """401: no token, or one the api does not accept (unknown, revoked, expired)."""


def api_error(status_code: int, detail: Any, method: str, url: str) -> ApiError:
    return (NotSignedIn if status_code == 401 else ApiError)(status_code, detail, method, url)


def format_detail(detail: Any) -> str:
    """A readable one-line-per-problem rendering of FastAPI/pydantic error details."""
    if isinstance(detail, list):
        lines = []
        for item in detail:
            if isinstance(item, Mapping) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                lines.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                lines.append(str(item))
        return "; ".join(lines)
    if isinstance(detail, Mapping):
        if "message" in detail:
            return str(detail["message"])
        return json.dumps(detail)
    return str(detail)


@dataclass(frozen=True)
class Series:
    """One metric of one run: the steps it was recorded at and its values there."""

    steps: list[int]
    values: list[float]
    higher_is_better: bool  # the api's direction: whether its best is the largest value

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass(frozen=True)
class Event:
    """One server-sent event from ``/experiments/{id}/stream``."""

    event: str
    data: Any


class Client:
    """Descent's api over HTTP.  ``token``: the API token to send (default: ``$DESCENT_TOKEN``,
    else the one saved for ``base_url``; ``""`` sends none); ``token_source`` says where it came
    from.  ``transport`` lets tests pass an in-process ASGI transport."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.base_url = (base_url or os.environ.get("DESCENT_URL") or DEFAULT_URL).rstrip("/")
        self.token, self.token_source = resolve_token(self.base_url, token)
        sent = dict(headers or {})
        if self.token and not any(k.lower() == "authorization" for k in sent):
            sent["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.base_url + API_PREFIX, timeout=timeout, transport=transport,
                                  headers=sent)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self._checked(self._http.request(method, path, **kwargs))

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise api_error(response.status_code, detail, response.request.method, str(response.request.url))
        return response

    def _submission(self, send: Callable[[dict[str, str]], httpx.Response]) -> Any:
        """The JSON answer of a creating request: ``send(headers)`` sends it with a new
        ``Idempotency-Key``, and again with the same key after a connection error or a 502/503/504
        (up to ``SUBMIT_ATTEMPTS`` sends, waiting longer each time); any other error is raised."""
        headers = {IDEMPOTENCY_HEADER: str(uuid.uuid4())}
        for attempt in range(SUBMIT_ATTEMPTS - 1):
            wait = min(RETRY_BACKOFF_S * 2**attempt, MAX_RETRY_WAIT_S)
            try:
                response = send(headers)
            except httpx.TransportError:  # refused, reset, or no answer in time: it may have been stored
                pass
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._body(response)
                wait = max(wait, _retry_after(response))
            time.sleep(wait)
        return self._body(send(headers))

    def _body(self, response: httpx.Response) -> Any:
        response = self._checked(response)
        return response.json() if response.content else None

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self._body(self._http.request(method, path, **kwargs))

    @staticmethod
    def _params(**params: Any) -> dict[str, Any]:
        out = {}
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            out[key] = value
        return out

    # -- identity -------------------------------------------------------------------------

    def login(self, username: str, password: str) -> JSON:
        """Start a dashboard session (its cookie stays in this client, and its CSRF token is sent
        with every later request); the answer is ``/me``'s."""
        me = self._json("POST", "/auth/login", json={"username": username, "password": password})
        if me.get("csrf_token"):
            self._http.headers["X-CSRF-Token"] = me["csrf_token"]
        return me

    def logout(self) -> None:
        """End this client's dashboard session."""
        self._request("POST", "/auth/logout")
        self._http.headers.pop("X-CSRF-Token", None)
        self._http.cookies.clear()

    def me(self) -> JSON:
        return self._json("GET", "/me")

    def tokens(self) -> list[JSON]:
        """The caller's API tokens (never their secrets)."""
        return self._json("GET", "/tokens")

    def create_token(self, name: str, *, expires_in_days: int | None = None, kind: str | None = None) -> JSON:
        """A new token; its secret is in ``["token"]`` of this answer only."""
        body: JSON = {"name": name}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        if kind is not None:
            body["kind"] = kind
        return self._json("POST", "/tokens", json=body)

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/tokens/{token_id}")

    # -- health, queue and catalogs -------------------------------------------------------

    def health(self) -> Health:
        return self._json("GET", "/health")

    def queue(self, *, limit: int | None = None) -> Queue:
        """Each queue's depth and why the caller's queued runs wait (read from the api's database)."""
        return self._json("GET", "/queue", params=self._params(limit=limit))

    def solvers(self) -> list[SolverItem]:
        return self._json("GET", "/solvers")

    def schedulers(self) -> list[CatalogItem]:
        return self._json("GET", "/schedulers")

    def architectures(self) -> list[CatalogItem]:
        return self._json("GET", "/architectures")

    # -- datasets and splits --------------------------------------------------------------

    def datasets(self) -> list[Dataset]:
        return self._json("GET", "/datasets")

    def dataset(self, dataset_id: int | str) -> Dataset:
        return self._json("GET", f"/datasets/{dataset_id}")

    def upload_dataset(self, path: str | os.PathLike, **form: Any) -> Dataset:
        data = {k: str(v) for k, v in form.items() if v is not None}

        def send(headers: dict[str, str]) -> httpx.Response:
            with open(path, "rb") as fh:  # read again for each send
                return self._http.post("/datasets", files={"file": (os.path.basename(path), fh)}, data=data,
                                       headers=headers)

        return self._submission(send)

    def create_split(
        self,
        dataset: int | str,
        *,
        strategy: str | None = None,
        fractions: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> Split:
        """A frozen train/val/test split of a built-in dataset (by name) or an upload (by id);
        ``strategy`` "random" or "stratified", ``fractions`` e.g. ``{"train": 0.7, "val": 0.2, "test": 0.1}``."""
        body: JSON = {"dataset": dataset}
        if strategy is not None:
            body["strategy"] = strategy
        if fractions is not None:
            body["fractions"] = dict(fractions)
        if seed is not None:
            body["seed"] = seed
        return self._submission(lambda headers: self._http.post("/splits", json=body, headers=headers))

    def delete_dataset(self, dataset_id: int | str) -> None:
        """Delete an upload (``ApiError`` 409 naming the splits that still use it)."""
        self._request("DELETE", f"/datasets/{dataset_id}")

    def delete_split(self, split_id: int) -> None:
        """Delete a split (``ApiError`` 409 naming the experiments that still use it)."""
        self._request("DELETE", f"/splits/{split_id}")

    def splits(self) -> list[Split]:
        return self._json("GET", "/splits")

    def split(self, split_id: int) -> Split:
        return self._json("GET", f"/splits/{split_id}")

    # -- experiments ----------------------------------------------------------------------

    def submit(self, spec: Mapping[str, Any]) -> Experiment:
        """Create an experiment from a spec (the api's ``POST /experiments`` body); it is queued."""
        body = dict(spec)
        return self._submission(lambda headers: self._http.post("/experiments", json=body, headers=headers))

    def dry_run(self, spec: Mapping[str, Any]) -> JSON:
        """Validate a spec exactly as ``submit`` would, creating nothing: ``{"spec": <resolved>,
        "queue": "cpu" | "gpu", "project_id": N}``, or the ``ApiError`` a submission would get."""
        return self._json("POST", "/experiments", params={"dry_run": "true"}, json=dict(spec))

    def experiments(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        split_id: int | None = None,
        solver: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        best: Iterable[str] | None = None,
    ) -> list[ExperimentListItem]:
        """Newest first, one page (``limit``, ``offset``); see ``experiments_page`` for the total."""
        return self.experiments_page(
            status=status, tag=tag, split_id=split_id, solver=solver, limit=limit, offset=offset, best=best
        )["items"]

    def experiments_page(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        split_id: int | None = None,
        solver: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        best: Iterable[str] | None = None,
    ) -> ExperimentPage:
        """``{"items": [...], "total": N, "limit": L, "offset": O}``.  With ``best`` (metric names,
        first preferred) each item's ``best`` is ``{name, value, step, higher_is_better}`` of the
        first of them the run has a value of, else None."""
        params = self._params(status=status, tag=tag, split_id=split_id, solver=solver, limit=limit, offset=offset,
                              best=list(best) if best is not None else None)
        return self._json("GET", "/experiments", params=params)

    def experiment(self, experiment_id: int) -> Experiment:
        return self._json("GET", f"/experiments/{experiment_id}")

    def cancel(self, experiment_id: int) -> Experiment:
        return self._json("POST", f"/experiments/{experiment_id}/cancel")

    def clone(self, experiment_id: int, overrides: Mapping[str, Any] | None = None) -> Experiment:
        """A new queued experiment from this one's spec, ``overrides`` merged in
        (e.g. ``{"solver": {"base_lr": 0.01}}``)."""
        body = dict(overrides or {})
        return self._submission(lambda headers: self._http.post(f"/experiments/{experiment_id}/clone", json=body,
                                                                headers=headers))

    def delete(self, experiment_id: int) -> None:
        """Delete a finished experiment (``ApiError`` 409 for a live one: cancel it first)."""
        self._request("DELETE", f"/experiments/{experiment_id}")

    def edit(self, experiment_id: int, *, name: str | None = None, tags: Iterable[str] | None = None,
             description: str | None = None) -> Experiment:
        """Change an experiment's name, tags (the whole list) or description; None keeps it."""
        body = self._params(name=name, description=description)
        if tags is not None:
            body["tags"] = list(tags)
        return self._json("PATCH", f"/experiments/{experiment_id}", json=body)

    def metrics(
        self, experiment_id: int, *, names: Iterable[str] | None = None, max_points: int | None = None
    ) -> dict[str, Series]:
        params = self._params(names=list(names) if names is not None else None, max_points=max_points)
        body = self._json("GET", f"/experiments/{experiment_id}/metrics", params=params)
        return {name: Series(list(s["steps"]), list(s["values"]), s["higher_is_better"])
                for name, s in body["series"].items()}

    def compare(
        self, ids: Iterable[int], *, names: Iterable[str] | None = None, max_points: int | None = None
    ) -> Comparison:
        """``{"experiments": [{id, name, status, series}], "summary": [{experiment_id, name, count,
        best_value, best_step, final_value, final_step, time_to_best_s, higher_is_better}]}``."""
        params = self._params(ids=list(ids), names=list(names) if names is not None else None, max_points=max_points)
        return self._json("GET", "/compare", params=params)

    def diagnosis(self, experiment_id: int) -> DiagnosisPublic:
        """``{"epochs": n, "findings": [{rule, severity, epoch, message, suggestion, evidence}]}``: what
        the convergence rules see in the run's metrics (docs/diagnosis.md)."""
        return self._json("GET", f"/experiments/{experiment_id}/diagnosis")

    def checkpoint(self, experiment_id: int) -> bytes:
        """The trained model's ``state_dict`` as ``torch.save`` bytes (``torch.load(io.BytesIO(b))``)."""
        return self._request("GET", f"/experiments/{experiment_id}/checkpoint").content

    def model(self, experiment_id: int, format: str = "pt2") -> bytes:
        """The trained model: ``pt2`` (default) a ``torch.export`` program with the run's
        preprocessing, raw features in (``torch.export.load(io.BytesIO(b)).module()(x)``; labels in
        its ``extra_files["descent.json"]``); ``state_dict`` the bare weights."""
        return self._request("GET", f"/experiments/{experiment_id}/model", params={"format": format}).content

    def stream(self, experiment_id: int, *, timeout: float | None = None) -> Iterator[Event]:
        """Server-sent events of one run until it ends: ``status`` (status, progress, epoch, step,
        error, ...) on every change and ``metrics`` (``{name: {steps, values}}``) with new points."""
        with self._http.stream(
            "GET", f"/experiments/{experiment_id}/stream", timeout=httpx.Timeout(timeout, connect=10.0)
        ) as response:
            if response.is_error:
                response.read()
                raise api_error(response.status_code, response.text, "GET", str(response.request.url))
            yield from parse_sse(response.iter_lines())

    def wait(self, experiment_id: int, *, timeout: float | None = None, poll_s: float = 0.5) -> Experiment:
        """Poll until the run has finished (succeeded, failed or cancelled); return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.experiment(experiment_id)
            if run["status"] in FINISHED:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} still {run['status']} after {timeout} s")
            time.sleep(poll_s)

    # -- studies ----------------------------------------------------------------------------

    def create_study(self, spec: Mapping[str, Any]) -> Study:
        """Start a hyperparameter search: ``spec`` is a study spec (``core.studies.space.StudySpec``:
        name, base, space, objective, strategy, pruner, budget, seed); its trials are experiments."""
        body = dict(spec)
        return self._submission(lambda headers: self._http.post("/studies", json=body, headers=headers))

    def create_tournament(self, base: Mapping[str, Any], solvers: Iterable[str] | None = None,
                          **options: Any) -> Study:
        """Start a solver tournament on ``base`` (an experiment spec): a grid of ``solvers`` (default:
        the api's ten) x log-spaced learning rates.  ``options`` are the api's other fields (lr_low,
        lr_high, points, pruner, metric, name, parallel, seed); one that is None is left to its default,
        so ``create_tournament(**file_body)`` sends a file's body as it is."""
        body: JSON = {"base": dict(base), **{k: v for k, v in options.items() if v is not None}}
        if solvers is not None:
            body["solvers"] = list(solvers)
        return self._submission(lambda headers: self._http.post("/studies/tournament", json=body, headers=headers))

    def studies(self, limit: int = 50, offset: int = 0, project_id: int | None = None) -> StudyPage:
        """``{"items": [...], "total": N, "limit": L, "offset": O}``, newest first."""
        return self._json("GET", "/studies", params=self._params(limit=limit, offset=offset, project_id=project_id))

    def study(self, study_id: int) -> Study:
        """One study with its trials, best trial and parameter importance."""
        return self._json("GET", f"/studies/{study_id}")

    def cancel_study(self, study_id: int) -> Study:
        """Stop a study: it starts no more trials and its live ones are cancelled (``ApiError`` 409
        when it has already finished)."""
        return self._json("POST", f"/studies/{study_id}/cancel")

    # -- optimizer lab: loss landscapes ---------------------------------------------------------

    def landscape(self, experiment_id: int, *, wait: bool = True, timeout: float | None = None,
                  poll_s: float = 0.5, **spec: Any) -> JSON:
        """A succeeded run's loss landscape (Li et al. 2018): ``spec`` holds the api's fields (dims,
        points, span, which, train_examples, val_examples, seed; one that is None takes its
        default).  The same request again answers the stored landscape instead of computing it
        twice.  With ``wait`` (default) poll until it is done or failed; its grids are in
        ``result`` (``axis``, ``train``/``val`` ``loss`` and quality, ``centre``, ``start``)."""
        body = {k: v for k, v in spec.items() if v is not None}
        landscape = self._json("POST", f"/experiments/{experiment_id}/landscapes", json=body)
        deadline = None if timeout is None else time.monotonic() + timeout
        while wait and landscape["status"] in ("queued", "running"):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"landscape {landscape['id']} still {landscape['status']} after {timeout} s")
            time.sleep(poll_s)
            landscape = self.get_landscape(landscape["id"])
        return landscape

    def landscapes(self, experiment_id: int) -> list[JSON]:
        """The run's landscapes, newest first, with their results."""
        return self._json("GET", f"/experiments/{experiment_id}/landscapes")["items"]

    def get_landscape(self, landscape_id: int) -> JSON:
        return self._json("GET", f"/landscapes/{landscape_id}")

    # races
    def create_race(self, spec: Mapping[str, Any], *, wait: bool = True, timeout: float | None = None,
                    poll_s: float = 0.05) -> JSON:
        """Race solvers on a 2-D test function: ``spec`` is the api's body (``function``, ``start``,
        ``steps``, ``racers``: each a ``solver`` section, an optional ``scheduler`` and ``label``).
        With ``wait`` (default) poll until it is done or failed; every racer's ``trajectory``,
        ``loss`` and ``lr`` are in ``result["racers"]``."""
        race = self._json("POST", "/races", json=dict(spec))
        deadline = None if timeout is None else time.monotonic() + timeout
        while wait and race["status"] in ("queued", "running"):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"race {race['id']} still {race['status']} after {timeout} s")
            time.sleep(poll_s)
            race = self.race(race["id"])
        return race

    def race(self, race_id: int) -> JSON:
        return self._json("GET", f"/races/{race_id}")

    def races(self, limit: int = 20, project_id: int | None = None) -> list[JSON]:
        """The newest races of your projects, without their results."""
        return self._json("GET", "/races", params=self._params(limit=limit, project_id=project_id))["items"]


def _retry_after(response: httpx.Response) -> float:
    """The seconds a ``Retry-After`` header asks to wait (up to ``MAX_RETRY_WAIT_S``), else 0."""
    try:
        seconds = float(response.headers.get("retry-after", "0"))
    except ValueError:  # an HTTP date: not worth parsing for a wait this short
        return 0.0
    return min(seconds, MAX_RETRY_WAIT_S) if seconds > 0 else 0.0  # NaN is not > 0


def parse_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Parse a ``text/event-stream`` (the WHATWG format): fields until a blank line make an event;
    ``data`` lines join with newlines and are decoded as JSON when they are JSON."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    payload: Any = json.loads(text)
                except ValueError:
                    payload = text
                yield Event(event, payload)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
