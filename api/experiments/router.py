from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse

from api import idempotency
from api.auth.principal import ProjectFilter, UserDep
from api.deps import EnqueuerDep, SessionDep, SettingsDep
from api.errors import NotFound, responses
from api.experiments import service
from api.experiments.schemas import (
    ExperimentCreate,
    ExperimentOverrides,
    ExperimentPage,
    ExperimentPreview,
    ExperimentPublic,
    ExperimentUpdate,
    ModelFormat,
    ModelWhich,
    Status,
)
from api.idempotency import IdempotencyDep
from core.spec.text import NulFreeStr

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.post("", status_code=201, response_model=ExperimentPublic, responses={
    **idempotency.responses(401, 403),
    200: {"model": ExperimentPreview, "description": "`dry_run=true`: the experiment a submission would create"},
})
def create_experiment(
    body: ExperimentCreate, principal: UserDep, session: SessionDep, settings: SettingsDep, enqueue: EnqueuerDep,
    once: IdempotencyDep,
    dry_run: Annotated[bool, Query(description=(
        "validate exactly as a submission does and answer 200 with the resolved spec and its queue (or the same "
        "422), storing, enqueueing and recording nothing"))] = False,
) -> JSONResponse:
    """Validate, store as ``queued`` and enqueue once stored.  Only ``name``, ``split_id``,
    ``architecture.name`` and ``solver.name`` are required.  With an ``Idempotency-Key``, a
    repeat returns the first answer and creates (and enqueues) nothing.  With ``dry_run=true``,
    only validate (the key is not used)."""
    if dry_run:
        return JSONResponse(jsonable_encoder(service.preview(session, settings, principal, body)))
    return once.run(lambda: (201, service.create(session, settings, enqueue, principal, body)))


@router.get("", response_model=ExperimentPage, responses=responses(401, 403))
def list_experiments(
    principal: UserDep,
    session: SessionDep,
    project_id: ProjectFilter = None,
    status: Status | None = None,
    tag: Annotated[NulFreeStr | None, Query(max_length=64)] = None,
    split_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    solver: Annotated[NulFreeStr | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    best: Annotated[NulFreeStr | None, Query(max_length=2000, description=(
        "comma-separated metric names, first preferred: each item's `best` is the run's best value "
        "of the first of them it has one of"))] = None,
) -> ExperimentPage:
    """Newest first; with ``best``, each run's best value of a metric in the same query."""
    return service.list_page(session, principal, best=service.parse_best(best), project_id=project_id, status=status, tag=tag, split_id=split_id,
                             solver=solver, limit=limit, offset=offset)


@router.get("/{experiment_id}", response_model=ExperimentPublic, responses=responses(401, 403, 404))
def get_experiment(experiment_id: int, principal: UserDep, session: SessionDep) -> ExperimentPublic:
    """One experiment: its stored spec, status, progress and where it runs."""
    return service.get(session, principal, experiment_id)


@router.patch("/{experiment_id}", response_model=ExperimentPublic, responses=responses(401, 403, 404))
def edit_experiment(experiment_id: int, body: ExperimentUpdate, principal: UserDep, session: SessionDep
                    ) -> ExperimentPublic:
    """Rename, retag or redescribe an experiment, in any state (fields left out stay as they
    are); the stored spec's ``name``, ``tags`` and ``description`` change with it."""
    return service.edit(session, principal, experiment_id, body)


@router.post("/{experiment_id}/cancel", response_model=ExperimentPublic, responses=responses(401, 403, 404, 409))
def cancel_experiment(experiment_id: int, principal: UserDep, session: SessionDep) -> ExperimentPublic:
    """A queued run is cancelled at once; a running one stops within a step."""
    return service.cancel(session, principal, experiment_id)


@router.post("/{experiment_id}/clone", status_code=201, response_model=ExperimentPublic,
             responses=idempotency.responses(401, 403, 404))
def clone_experiment(
    experiment_id: int, principal: UserDep, session: SessionDep, settings: SettingsDep, enqueue: EnqueuerDep,
    once: IdempotencyDep,
    overrides: Annotated[ExperimentOverrides | None, Body(examples=[{"solver": {"base_lr": 0.01}}])] = None,
) -> JSONResponse:
    """A new experiment from this one's spec with ``overrides`` merged in (duplicate-and-change);
    with an ``Idempotency-Key``, a repeat returns the first answer and creates nothing."""
    return once.run(lambda: (201, service.clone(session, settings, enqueue, principal, experiment_id,
                                                overrides.root if overrides else {})))


@router.delete("/{experiment_id}", status_code=204, responses=responses(401, 403, 404, 409))
def delete_experiment(experiment_id: int, principal: UserDep, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete a finished experiment with its metrics and checkpoints (cancel a live one first)."""
    service.delete(session, settings, principal, experiment_id)
    return Response(status_code=204)


@router.get(
    "/{experiment_id}/checkpoint", response_class=FileResponse, responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
              "description": "the trained model's state_dict (``torch.load`` reads it)"},
        **responses(401, 403, 404),
    },
)
def get_checkpoint(experiment_id: int, principal: UserDep, session: SessionDep, settings: SettingsDep
                   ) -> FileResponse:
    """The trained model's weights once the run has succeeded (404 before)."""
    service.load(session, principal, experiment_id)
    path = settings.checkpoint_path(experiment_id, "final")
    if not path.is_file():
        raise NotFound(f"experiment {experiment_id} has no final checkpoint")
    return FileResponse(path, media_type="application/octet-stream", filename=f"experiment-{experiment_id}.pt")


@router.get(
    "/{experiment_id}/model", response_class=FileResponse, responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
              "description": "``pt2``: a ``torch.export`` program, raw features in, logits (or the regression target "
                             "in its units) out, loadable with ``torch.export.load`` alone; its "
                             "``extra_files['descent.json']`` names the labels in output order.  ``onnx``: the same "
                             "program as ONNX (the labels in the model's metadata ``descent.json``), for onnxruntime "
                             "and other runtimes.  ``state_dict``: the network's weights (the architecture and the "
                             "train split's standardisation are not in it)."},
        **responses(401, 403, 404),
    },
)
def get_model(experiment_id: int, principal: UserDep, session: SessionDep, settings: SettingsDep,
              format: Annotated[ModelFormat, Query(description="pt2 (default): the model with its preprocessing, "
                                                               "for torch alone; onnx: the same as ONNX; "
                                                               "state_dict: the bare weights")]
              = ModelFormat.pt2,
              which: Annotated[ModelWhich, Query(description="last (default): the weights the run ended with; "
                                                             "best: its best epoch's by the early-stopping metric "
                                                             "(val/loss without early stopping)")]
              = ModelWhich.last) -> FileResponse:
    """The trained model of a succeeded run (404 before, or when it was trained before that format existed)."""
    service.load(session, principal, experiment_id)
    path = settings.model_path(experiment_id, format.value, which.value)
    suffix = "" if which is ModelWhich.last else f"-{which.value}"
    name = f"experiment-{experiment_id}{suffix}.{'pt' if format is ModelFormat.state_dict else format.value}"
    if not path.is_file():
        raise NotFound(f"experiment {experiment_id} has no {which.value} {format.value} model: a run stores one "
                       f"when it succeeds" + (" and an epoch improved on its metric" if which is ModelWhich.best
                                              else ""))
    return FileResponse(path, media_type="application/octet-stream", filename=name)
