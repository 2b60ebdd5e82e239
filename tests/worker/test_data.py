"""Data preparation: standardisation fitted on the train part only, every sample once per epoch
in a seeded order that a saved generator state reproduces, streamed batches equal resident ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.worker.splits import builtin_split
from worker.data import BatchOrder, prepare


@pytest.mark.parametrize("dataset", ["digits", "wine", "diabetes"])
def test_standardisation_uses_the_train_part_only(dataset):
    split = builtin_split(dataset)
    data = prepare(split)
    mean = split.x_train.mean(axis=0, dtype=np.float64)
    std = split.x_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    np.testing.assert_allclose(data.train.x.numpy(), (split.x_train - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.test.x.numpy(), (split.x_test - mean) / std, rtol=1e-5, atol=1e-5)
    # the held-out parts are transformed with the train statistics, so they are not centred themselves
    assert np.abs(data.val.x.numpy().mean(axis=0)).max() > 1e-3
    if split.info.task == "regression":
        y_mean, y_std = data.target_scale
        assert (y_mean, y_std) == pytest.approx((split.y_train.mean(), split.y_train.std()), rel=1e-6)
    else:
        assert data.n_outputs == split.info.n_classes
        assert torch.equal(data.train.y, torch.from_numpy(split.y_train))


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (64, 64), (100, None), (7, 100)])
def test_every_sample_appears_once_per_epoch(n, batch_size):
    order = BatchOrder(n, batch_size, seed=0, device=torch.device("cpu"))
    for _ in range(3):
        batches = order.epoch()
        assert len(batches) == len(order)
        assert sorted(torch.cat(batches).tolist()) == list(range(n))
        assert all(len(b) <= (batch_size or n) for b in batches)


def test_the_order_is_seeded_and_resumes_from_its_state():
    a = BatchOrder(50, 8, seed=3, device=torch.device("cpu"))
    b = BatchOrder(50, 8, seed=3, device=torch.device("cpu"))
    assert all(torch.equal(x, y) for x, y in zip(a.epoch(), b.epoch()))
    state = a.state_dict()
    expected = a.epoch()
    c = BatchOrder(50, 8, seed=99, device=torch.device("cpu"))
    c.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(c.epoch(), expected))
    assert not all(torch.equal(x, y) for x, y in zip(BatchOrder(50, 8, seed=4, device=torch.device("cpu")).epoch(),
                                                       BatchOrder(50, 8, seed=3, device=torch.device("cpu")).epoch()))


def test_a_streamed_dataset_gives_the_same_batches_as_a_resident_one():
    split = builtin_split("iris")
    resident = prepare(split)
    streamed = prepare(split, resident_limit=0)
    index = torch.tensor([5, 0, 17, 3])
    for a, b in zip(resident.batch(index), streamed.batch(index)):
        assert torch.equal(a, b)
    chunks = [torch.equal(x1, x2) and torch.equal(y1, y2)
              for (x1, y1), (x2, y2) in zip(resident.chunks(resident.val), streamed.chunks(streamed.val))]
    assert chunks and all(chunks)
