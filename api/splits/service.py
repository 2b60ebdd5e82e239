"""Splits: computed once with scikit-learn's splitters and frozen, so they reproduce forever."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.datasets.service import resolve
from api.errors import Conflict, NotFound, PayloadError
from api.splits.schemas import SplitCreate, SplitPublic
from core.datasets.builtin import builtin_info, load_builtin
from core.datasets.storage import StoredDatasetError, load_arrays
from core.settings import Settings
from core.splits import SplitError, describe, make_split
from store.models import Split
from store.repositories import audit
from store.repositories import splits as repo


def to_public(split: Split) -> SplitPublic:
    return SplitPublic(
        id=split.id, project_id=split.project_id, dataset=split.builtin if split.builtin is not None else split.dataset_id,
        strategy=split.strategy, fractions=split.fractions, seed=split.seed,
        sizes=split.summary["sizes"], class_counts=split.summary.get("class_counts"), created_at=split.created_at,
    )


def create_split(session: Session, settings: Settings, principal: Principal, body: SplitCreate
                 ) -> tuple[SplitPublic, bool]:
    """The split ``body`` asks for and whether it is new: an identical one (same data, strategy,
    fractions and seed in the same project: the same rows) is returned instead of a copy, so a
    client that re-sends a spec's ``split:`` block, or retries, makes one split."""
    try:
        builtin, dataset = resolve(session, body.dataset, principal)
    except LookupError as exc:
        raise PayloadError.at(["body", "dataset"], str(exc)) from None
    wanted = body.project_id if body.project_id is not None or dataset is None else dataset.project_id
    project = access.project_for_new(session, principal, wanted, ["body", "project_id"])
    if dataset is not None and dataset.project_id != project.id:
        raise PayloadError.at(["body", "project_id"], f"dataset {dataset.id} belongs to another project: split it "
                                                      "in its own project (or upload it to this one)")
    fractions = body.fractions.model_dump()
    same = repo.find_same(session, project_id=project.id, builtin=builtin,
                          dataset_id=None if dataset is None else dataset.id, strategy=body.strategy,
                          fractions=fractions, seed=body.seed)
    if same is not None:
        return to_public(same), False
    if builtin is not None:
        info = builtin_info(builtin)
        _, y = load_builtin(builtin)
        classes = sorted(info.class_counts, key=int) if info.class_counts else None
    else:
        try:
            _, y = load_arrays(settings.upload_dir / dataset.path, dataset.arrays_sha256)
        except StoredDatasetError as exc:
            raise PayloadError.at(["body", "dataset"], str(exc)) from None
        info_task = dataset.task
        classes = list(dataset.class_counts) if dataset.class_counts else None
    task = info.task if builtin is not None else info_task
    try:
        parts = make_split(y, task, body.strategy, fractions, body.seed)
    except SplitError as exc:
        raise PayloadError.at(["body", "strategy" if "stratif" in str(exc) else "fractions"], str(exc)) from None
    split = repo.add(session, Split(
        project_id=project.id, builtin=builtin, dataset_id=None if dataset is None else dataset.id, strategy=body.strategy,
        fractions=fractions, seed=body.seed, train_indices=parts["train"].tolist(),
        val_indices=parts["val"].tolist(), test_indices=parts["test"].tolist(),
        summary=describe(y, parts, classes),
    ))
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="split.create", target=f"split {split.id}", detail={"dataset": body.dataset})
    return to_public(split), True


def list_splits(session: Session, principal: Principal, limit: int, offset: int, project_id: int | None = None
                ) -> list[SplitPublic]:
    scope = access.visible_projects(principal, project_id)
    return [to_public(s) for s in repo.list_page(session, limit=limit, offset=offset, project_ids=scope)]


def get_split(session: Session, principal: Principal, split_id: int) -> SplitPublic:
    split = repo.get(session, split_id)
    if split is None or principal.role_in(split.project_id) is None:
        raise NotFound(f"split {split_id} does not exist")
    return to_public(split)


def delete_split(session: Session, principal: Principal, split_id: int) -> None:
    """Delete a split (editor of its project) unless an experiment uses it (409 naming them)."""
    split = repo.get(session, split_id)
    if split is None or principal.role_in(split.project_id) is None:
        raise NotFound(f"split {split_id} does not exist")
    access.require(principal, split.project_id, "editor", f"split {split_id}")
    users = repo.experiments_using(session, split.id)
    if users:
        raise Conflict(f"split {split_id} is used by experiment(s) {users[:20]}: delete them first")
    project_id = split.project_id
    repo.delete(session, split)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project_id,
                 action="split.delete", target=f"split {split_id}")
