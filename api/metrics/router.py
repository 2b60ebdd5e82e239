from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.auth.principal import PrincipalDep, UserDep
from api.deps import SessionDep, SettingsDep
from api.errors import PayloadError, responses
from api.experiments import service as experiments_service
from api.metrics import service
from api.metrics.schemas import ComparePublic, MetricsPublic, PointsAccepted, PointsCreate
from api.metrics.stream import events
from core.spec.text import NulFreeStr

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


@router.post("/experiments/{experiment_id}/metrics", response_model=PointsAccepted,
             responses=responses(401, 403, 404, 409))
def add_metrics(experiment_id: int, body: PointsCreate, principal: PrincipalDep, session: SessionDep,
                settings: SettingsDep) -> PointsAccepted:
    """Record points (idempotent: points already stored are skipped).  A worker token reports for
    a running experiment; a user needs editor; a finished experiment's metrics are final (409)."""
    return PointsAccepted(inserted=service.ingest(session, principal, experiment_id, body, settings.max_metric_names))


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
               **responses(401, 403, 404)},
)
def stream_experiment(experiment_id: int, request: Request, principal: UserDep, session: SessionDep
                      ) -> StreamingResponse:
    """``event: metrics`` with new points and ``event: status`` on changes, until the run ends."""
    experiments_service.load(session, principal, experiment_id)
    return StreamingResponse(events(request.app.state.session_factory, experiment_id),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
