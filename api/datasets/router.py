from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.auth.principal import ProjectFilter, UserDep
from api.datasets import service
from api.datasets.schemas import DatasetPublic, DatasetUpload
from api.deps import SessionDep, SettingsDep
from api.errors import TooLarge, responses
from api.idempotency import UploadIdempotencyDep

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetPublic], responses=responses(401, 403))
def list_datasets(principal: UserDep, session: SessionDep, project_id: ProjectFilter = None) -> list[DatasetPublic]:
    """The built-in datasets (nothing stored) followed by the uploads of the caller's projects."""
    return service.list_datasets(session, principal, project_id)


@router.post("", status_code=201, response_model=DatasetPublic, responses=idempotency.responses(401, 403, 413))
async def upload_dataset(
    principal: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    form: Annotated[DatasetUpload, Form(media_type="multipart/form-data")],
    once: UploadIdempotencyDep,
) -> JSONResponse:
    """Store an uploaded table (.csv) or arrays (.npz) as a dataset a split can use.  With an
    ``Idempotency-Key``, a repeat (same fields, same file) returns the first answer."""
    data = await form.file.read(settings.max_upload_bytes + 1)  # a declared length was checked before the body was read
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"upload larger than {settings.max_upload_bytes} bytes (DESCENT_MAX_UPLOAD_BYTES)")
    filename = form.file.filename or ""
    fields = form.model_dump(exclude={"file"}, mode="json")
    # in a worker thread: a repeat of a key still in flight waits on the database for it, which
    # must not hold up the event loop that serves the first
    return await run_in_threadpool(once.run, lambda: (201, service.create_upload(
        session, settings, principal, project_id=form.project_id, name=form.name, filename=filename, data=data,
        target=form.target, task=form.task,
    )), request_sha256=idempotency.upload_sha256(fields, filename, data))


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=responses(401, 403, 404))
def get_dataset(dataset_id: str, principal: UserDep, session: SessionDep) -> DatasetPublic:
    """A dataset by number (an upload) or by name (a built-in)."""
    return service.get_dataset(session, dataset_id, principal)


@router.delete("/{dataset_id}", status_code=204, responses=responses(401, 403, 404, 409))
def delete_dataset(dataset_id: str, principal: UserDep, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete an upload and its stored arrays (409 while a split uses it; built-ins stay)."""
    service.delete_upload(session, settings, principal, dataset_id)
    return Response(status_code=204)
