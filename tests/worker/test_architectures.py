"""The model registry: one module per catalogued architecture under its class_path name, the
catalog's defaults and bounds, and output shapes for the sample shapes each one accepts."""

from __future__ import annotations

import math

import pytest
import torch

from core.spec.architectures import ARCHITECTURES, architecture_fit_errors
from worker import architectures
from worker.architectures import MODELS, build_model


def test_every_catalogued_architecture_has_its_class():
    assert set(MODELS) == set(ARCHITECTURES)
    for name, entry in ARCHITECTURES.items():
        module, _, cls = entry.class_path.rpartition(".")
        assert module == "worker.architectures" and getattr(architectures, cls) is MODELS[name]


CASES = [
    ("linear", {}, (13,)),
    ("mlp", {"depth": 3, "width": 8, "normalization": "batch", "dropout": 0.5}, (4,)),
    ("mlp", {"normalization": "layer", "activation": "sigmoid"}, (8, 8)),
    ("cnn1d", {"channels": 4, "kernel_size": 5}, (30,)),
    ("cnn1d", {"channels": 4}, (3, 20)),  # a 3-channel signal
    ("cnn2d", {}, (64,)),  # digits: 8×8 from a flat vector
    ("cnn2d", {"channels": 2, "hidden": 10}, (3, 12, 12)),
    ("resnet", {"width": 4, "stages": 3}, (8, 8)),
    ("transformer", {"d_model": 8, "heads": 2}, (4,)),
    ("transformer", {"d_model": 8, "heads": 4, "layers": 1}, (6, 5)),  # 6 tokens of 5 features
]


@pytest.mark.parametrize(("name", "params", "shape"), CASES)
def test_models_map_a_batch_to_one_output_row_per_sample(name, params, shape):
    assert architecture_fit_errors(name, params, shape) == []  # the api would accept this spec
    model = build_model(name, params, shape, 5)
    model.eval()
    out = model(torch.randn(3, math.prod(shape)).reshape(3, *shape))
    assert out.shape == (3, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_defaults_come_from_the_catalog():
    model = build_model("mlp", {}, (10,), 2)
    defaults = ARCHITECTURES["mlp"].defaults()
    hidden = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][:-1]
    assert len(hidden) == defaults["depth"] and hidden[0].out_features == defaults["width"]


@pytest.mark.parametrize(("params", "message"), [({"depth": 0}, "depth"), ({"width": 1.5}, "width"), ({"nope": 1}, "nope")])
def test_bad_hyperparameters_are_rejected_naming_them(params, message):
    with pytest.raises(ValueError, match=f"architecture.{message}"):
        build_model("mlp", params, (4,), 2)
