"""Datasets: built-ins come from ``core.datasets``; uploads are parsed, checked, stored as
arrays under the data folder and recorded with the upload's checksum."""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.datasets.parsing import parse_and_store_in_child
from api.datasets.schemas import DatasetPublic
from api.deps import after_commit
from api.errors import Conflict, NotFound, PayloadError, TooLarge
from api.ids import is_digits, parse_id, shorten
from api.limits import quotas
from core.datasets.builtin import BUILTIN_DATASETS, builtin_info
from core.datasets.storage import info_for
from core.datasets.uploads import UploadError, UploadTooLarge
from core.settings import Settings
from core.spec.suggest import closest
from core.spec.text import NUL_MESSAGE
from store.models import Dataset
from store.repositories import audit
from store.repositories import datasets as repo


def builtin_public(name: str) -> DatasetPublic:
    info = builtin_info(name)
    return DatasetPublic(id=name, **info.model_dump(exclude={"feature_shape"}), feature_shape=list(info.feature_shape))


def upload_public(dataset: Dataset) -> DatasetPublic:
    info = info_for(dataset)
    return DatasetPublic(
        id=dataset.id, project_id=dataset.project_id, **info.model_dump(exclude={"feature_shape"}),
        feature_shape=list(info.feature_shape),
        filename=dataset.filename, sha256=dataset.sha256, size_bytes=dataset.size_bytes, created_at=dataset.created_at,
    )


def list_datasets(session: Session, principal: Principal, project_id: int | None = None) -> list[DatasetPublic]:
    """Every built-in, then the uploads of the caller's projects (of ``project_id`` only, if given)."""
    scope = access.visible_projects(principal, project_id)
    return [builtin_public(n) for n in BUILTIN_DATASETS] + [upload_public(d) for d in repo.list_all(session, scope)]


def resolve(session: Session, ref: int | str, principal: Principal) -> tuple[str | None, Dataset | None]:
    """(built-in name, None) or (None, uploaded row) for a reference; ``LookupError`` if unknown
    (an upload of a project the caller is not in is unknown too).

    A string of ASCII digits is an upload's id (one outside the id range names no upload); any
    other string is a built-in's name, else the name of an upload in the caller's projects (two
    uploads of that name: the caller must pick one by id)."""
    if isinstance(ref, str) and not is_digits(ref):
        if ref in BUILTIN_DATASETS:
            return ref, None
        scope = access.visible_projects(principal)
        found = repo.named(session, ref, scope)
        if len(found) == 1:
            return None, found[0]
        if found:
            ids = ", ".join(f"{d.id} (project {d.project_id})" for d in found)
            raise LookupError(f"several uploaded datasets are named {shorten(ref)}: {ids}; name one by its id")
        names = sorted({*BUILTIN_DATASETS, *(d.name for d in repo.list_all(session, scope))})
        close = closest(ref, names, aliases={})
        hint = f"; did you mean {close!r}?" if close else ""
        raise LookupError(f"no dataset named {shorten(ref)}{hint} (built-ins: {', '.join(sorted(BUILTIN_DATASETS))}; "
                          "an upload goes by its name or id)")
    dataset_id = ref if isinstance(ref, int) else parse_id(ref)
    dataset = None if dataset_id is None else repo.get(session, dataset_id)
    if dataset is None or principal.role_in(dataset.project_id) is None:
        raise LookupError(f"dataset {shorten(str(ref))} does not exist")
    return None, dataset


def get_dataset(session: Session, ref: str, principal: Principal) -> DatasetPublic:
    try:
        builtin, dataset = resolve(session, ref, principal)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    return builtin_public(builtin) if builtin else upload_public(dataset)


def create_upload(session: Session, settings: Settings, principal: Principal, *, project_id: int | None, name: str,
                  filename: str, data: bytes, target: str | None, task: str | None) -> DatasetPublic:
    project = access.project_for_new(session, principal, project_id, ["body", "project_id"])
    quotas.check_storage(session, settings, project, len(data))
    if "\x00" in filename:
        raise PayloadError.at(["body", "file"], f"the file name {NUL_MESSAGE}")
    try:
        stored = parse_and_store_in_child(settings.upload_dir, filename, data, target, task,
                                          settings.max_upload_bytes)
    except UploadTooLarge as exc:
        raise TooLarge(str(exc)) from None
    except UploadError as exc:
        raise PayloadError.at(["body", exc.field], str(exc)) from None
    sha256 = hashlib.sha256(data).hexdigest()
    dataset = repo.add(session, Dataset(
        project_id=project.id, name=name, format=filename.rsplit(".", 1)[-1].lower(), filename=filename[:255],
        path=stored.path_name, sha256=sha256, arrays_sha256=stored.digest, size_bytes=len(data), target=target,
        n_samples=stored.n_samples, feature_shape=stored.feature_shape, task=stored.task,
        n_classes=stored.n_classes, class_counts=stored.class_counts,
    ))
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="dataset.create", target=f"dataset {dataset.id}", detail={"name": name, "filename": filename})
    return upload_public(dataset)


def delete_upload(session: Session, settings: Settings, principal: Principal, ref: str) -> None:
    """Delete an upload (editor of its project) unless a split uses it (409 naming them); its
    stored arrays go once no other upload shares them.  Built-ins cannot be deleted."""
    try:
        builtin, dataset = resolve(session, ref, principal)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    if builtin is not None:
        raise Conflict(f"{builtin} is a built-in dataset: it cannot be deleted")
    access.require(principal, dataset.project_id, "editor", f"dataset {dataset.id}")
    users = repo.splits_using(session, dataset.id)
    if users:
        raise Conflict(f"dataset {dataset.id} is used by split(s) {users[:20]}: delete them first")
    dataset_id, project_id, path = dataset.id, dataset.project_id, settings.upload_dir / dataset.path
    unused = repo.delete(session, dataset)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project_id,
                 action="dataset.delete", target=f"dataset {dataset_id}")
    if unused:
        after_commit(session, lambda: path.unlink(missing_ok=True))
