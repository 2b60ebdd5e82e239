from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth.principal import Principal, PrincipalDep, UserDep, authenticate, record_use, require_user
from api.deps import SessionDep, SettingsDep
from api.errors import ErrorPublic, PayloadError, responses
from api.experiments import service as experiments_service
from api.metrics import service
from api.metrics.diagnosis import experiment_diagnosis
from api.metrics.hub import hub_for
from api.metrics.schemas import ComparePublic, MetricsPublic, PointsAccepted, PointsCreate
from core.diagnosis import DiagnosisPublic
from core.spec.text import NulFreeStr
from store.db import read_only, session_scope

router = APIRouter(tags=["metrics"])
MaxPoints = Annotated[int, Query(ge=4, le=100_000, description="most points per series (min/max per bucket)")]
Names = Annotated[NulFreeStr | None, Query(max_length=4000, description="comma-separated metric names; default all")]


@router.get("/experiments/{experiment_id}/metrics", response_model=MetricsPublic,
            responses=responses(401, 403, 404))
def get_metrics(experiment_id: int, principal: UserDep, session: SessionDep, names: Names = None,
                max_points: MaxPoints = 500) -> MetricsPublic:
    """Each series downsampled on the server: equal step buckets keep their min and max."""
    experiments_service.load(session, principal, experiment_id)
    return service.experiment_series(session, experiment_id, service.parse_list(names, ["query", "names"]),
                                     max_points)


@router.get("/experiments/{experiment_id}/diagnosis", response_model=DiagnosisPublic,
            responses=responses(401, 403, 404))
def get_diagnosis(experiment_id: int, principal: UserDep, session: SessionDep) -> DiagnosisPublic:
    """What the convergence rules (diverging, oscillating, plateau, lr_too_small, overfitting,
    dead_warmup; docs/diagnosis.md) see in the experiment's metrics, each finding with its
    evidence and a suggestion; computed from the stored metrics on every read."""
    experiments_service.load(session, principal, experiment_id)
    return experiment_diagnosis(session, experiment_id)


@router.post("/experiments/{experiment_id}/metrics", response_model=PointsAccepted,
             responses=responses(401, 403, 404, 409))
def add_metrics(experiment_id: int, body: PointsCreate, principal: PrincipalDep, session: SessionDep,
                settings: SettingsDep) -> PointsAccepted:
    """Record points (idempotent: points already stored are skipped).  A worker token reports for
    a running experiment; a user needs editor; a finished experiment's metrics are final (409)."""
    return PointsAccepted(inserted=service.ingest(session, principal, experiment_id, body, settings.max_metric_names,
                                                  settings.max_metric_points))


@router.get("/compare", response_model=ComparePublic, responses=responses(401, 403, 404))
def compare_experiments(
    principal: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    ids: Annotated[str, Query(max_length=4000, description="comma-separated experiment ids")],
    names: Names = None,
    max_points: MaxPoints = 500,
) -> ComparePublic:
    """Every experiment's series and a summary table (best value and its step, final value,
    time to best) in one request."""
    id_list = service.parse_list(ids, ["query", "ids"], integers=True)
    if not id_list:
        raise PayloadError.at(["query", "ids"], "name at least one experiment id")
    if len(id_list) > settings.max_compare_experiments:
        raise PayloadError.at(["query", "ids"], f"at most {settings.max_compare_experiments} experiments")
    return service.compare(session, principal, id_list, service.parse_list(names, ["query", "names"]), max_points)


@router.get(
    "/experiments/{experiment_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
               **responses(401, 403, 404),
               429: {"model": ErrorPublic, "description": "Too many streams open: the caller's "
                     "(DESCENT_MAX_STREAMS_PER_USER) or the api's (DESCENT_MAX_STREAMS); `Retry-After` says when "
                     "to try again."},
               503: {"model": ErrorPublic, "description": "The database is busy; `Retry-After` says when to try "
                     "again."}},
)
async def stream_experiment(experiment_id: int, request: Request) -> StreamingResponse:
    """``event: metrics`` with new points and ``event: status`` on changes, until the run ends.
    A user may hold DESCENT_MAX_STREAMS_PER_USER streams open at once and the api serves
    DESCENT_MAX_STREAMS in all: past either, 429 with ``Retry-After``."""
    principal = await run_in_threadpool(_stream_reader, request, experiment_id)
    return hub_for(request.app).open(experiment_id, principal.user_id)


def _stream_reader(request: Request, experiment_id: int) -> Principal:
    """The caller, if a user who may read the experiment: checked in one trip to the threadpool
    and one short transaction.  Through the session and caller dependencies a request holds its
    connection from one threadpool trip to the next; 150 streams opened at once took every
    thread while waiting for a connection, the requests holding the connections then waited
    for a thread, and the pool's wait ran out (503s) before any of them finished."""
    factory = request.app.state.session_factory
    uses: list = []
    with session_scope(factory) as session:
        read_only(session)
        principal = require_user(authenticate(request, session, uses.append))
        experiments_service.load(session, principal, experiment_id)
    for caller in uses:  # after the read's transaction: on SQLite this write waits for no one of ours
        record_use(factory, caller)
    return principal
