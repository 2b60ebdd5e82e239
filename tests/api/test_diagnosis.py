"""``GET /experiments/{id}/diagnosis`` over HTTP: findings computed from the points stored, a
running run's diagnosis follows its finished epochs, and an unknown experiment is a 404."""

from __future__ import annotations

import pytest

API = "/api/v1"


@pytest.fixture
def experiment_id(client, iris_split):
    body = {"name": "d", "split_id": iris_split["id"], "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
    return client.post(f"{API}/experiments", json=body).json()["id"]


def _epoch_points(epoch: int, train: float, val: float) -> list[dict]:
    """What the engine records for one epoch of 2 steps (values of a step that measures diagnostics)."""
    steps = (2 * epoch - 1, 2 * epoch)
    points = [{"name": n, "step": s, "epoch": epoch, "value": v}
              for s in steps for n, v in (("train/loss", train), ("lr", 0.1), ("update_ratio", 1e-3))]
    return points + [{"name": n, "step": steps[-1], "epoch": epoch, "value": v}
                     for n, v in (("val/loss", val), ("epoch_time", 0.5))]


def _post(client, eid, points):
    r = client.post(f"{API}/experiments/{eid}/metrics", json={"points": points})
    assert r.status_code == 200, r.text


def test_a_run_whose_val_loss_rises_while_train_loss_falls_is_diagnosed_as_overfitting(client, experiment_id):
    train = [1.0 * 0.7 ** e for e in range(1, 9)]
    val = [1.0, 0.8, 0.6, 0.5, 0.55, 0.6, 0.7, 0.8]  # best at epoch 4, rising from there
    for epoch in range(1, 7):
        _post(client, experiment_id, _epoch_points(epoch, train[epoch - 1], val[epoch - 1]))
    r = client.get(f"{API}/experiments/{experiment_id}/diagnosis")
    assert r.status_code == 200, r.text
    assert r.json() == {"epochs": 6, "findings": []}  # two rises so far
    _post(client, experiment_id, _epoch_points(7, train[6], val[6]))
    data = client.get(f"{API}/experiments/{experiment_id}/diagnosis").json()
    assert data["epochs"] == 7
    [finding] = data["findings"]
    assert (finding["rule"], finding["severity"], finding["epoch"]) == ("overfitting", "warning", 7)
    assert finding["evidence"] == {"val_loss_from": 0.5, "val_loss_to": 0.7, "best_epoch": 4, "best_val_loss": 0.5}
    assert "early stopping at epoch 4 would have kept val/loss 0.5" in finding["suggestion"]


def test_an_experiment_without_metrics_has_no_findings(client, experiment_id):
    assert client.get(f"{API}/experiments/{experiment_id}/diagnosis").json() == {"epochs": 0, "findings": []}


def test_an_unknown_experiment_is_a_404(client):
    r = client.get(f"{API}/experiments/987654/diagnosis")
    assert r.status_code == 404 and "987654" in r.text
