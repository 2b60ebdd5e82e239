from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile

from api.datasets import service
from api.datasets.schemas import DatasetPublic
from api.deps import SessionDep, SettingsDep
from api.errors import TooLarge, responses
from core.spec.text import NulFreeStr

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetPublic])
def list_datasets(session: SessionDep) -> list[DatasetPublic]:
    """The built-in datasets (nothing stored) followed by the uploads."""
    return service.list_datasets(session)


@router.post("", status_code=201, response_model=DatasetPublic, responses=responses(413))
async def upload_dataset(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="a .csv (with `target`) or a .npz with arrays x (N, ...) and y (N,)",
                                     json_schema_extra={"format": "binary"})],
    name: Annotated[NulFreeStr, Form(min_length=1, max_length=200)],
    target: Annotated[NulFreeStr | None, Form(max_length=200, description="label column of a csv")] = None,
    task: Annotated[Literal["classification", "regression"] | None, Form(description="default: inferred")] = None,
) -> DatasetPublic:
    data = await file.read(settings.max_upload_bytes + 1)  # a declared length was checked before the body was read
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"upload larger than {settings.max_upload_bytes} bytes")
    return service.create_upload(
        session, settings, name=name, filename=file.filename or "", data=data, target=target, task=task
    )


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=responses(404))
def get_dataset(dataset_id: str, session: SessionDep) -> DatasetPublic:
    """A dataset by number (an upload) or by name (a built-in)."""
    return service.get_dataset(session, dataset_id)
