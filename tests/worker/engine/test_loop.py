"""The training engine on CPU: every catalogued solver and scheduler trains, Adam learns digits,
runs are reproducible and resumable bit for bit, cancel and divergence end a run as promised,
and the gradient tools and full-batch GD do what their formulas say."""

from __future__ import annotations

import contextlib
import math
import re

import numpy as np
import pytest
import torch

from optim import catalog
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import Diverged, Progress, train
from worker.sink import ListSink

TIMING = {"epoch_time", "samples_per_s"}


def _run(spec, split, **kwargs):
    sink = ListSink()
    result = train(spec, prepare(split), sink=sink, **kwargs)
    return result, sink


def _values(sink: ListSink) -> dict[tuple[str, int], float]:
    return {(p.name, p.step): p.value for p in sink.points if p.name not in TIMING}


def _solver_body(entry) -> dict:
    body: dict = {"name": entry.name}
    if entry.wraps:
        body["base"] = "adam"
    if any(h.name == "lr" for h in entry.hyperparameters):
        body["base_lr"] = 1e-2 if entry.family != "second_order" else 1.0
    return body


@pytest.mark.parametrize("name", sorted(catalog.SOLVERS))
def test_every_catalogued_solver_trains_an_mlp_on_digits(name):
    entry = catalog.solver(name)
    split = builtin_split("digits")
    # second-order solvers are meant for few parameters: 64·4 + 4 + 4·10 + 10 = 310
    width = 4 if entry.max_params is not None or entry.needs_closure else 16
    spec = make_spec(split, solver=_solver_body(entry), architecture={"name": "mlp", "depth": 1, "width": width})
    result, sink = _run(spec, split)
    assert result.status == "succeeded" and result.step == math.ceil(len(split.x_train) / 256)
    losses = [v for _, v in sink.series("train/loss")]
    assert len(losses) == result.step and all(math.isfinite(v) for v in losses)
    assert 0.0 <= result.summary["test/accuracy"] <= 1.0


_SCHEDULER_REQUIRED = {
    "exponentiallr": {"gamma": 0.5},
    "cycliclr": {"base_lr": 1e-3, "max_lr": 1e-2},
    "onecyclelr": {"max_lr": 1e-2},
}


_SCHEDULER_CASES = [(name, _SCHEDULER_REQUIRED.get(name, {})) for name in sorted(catalog.SCHEDULERS)]
_SCHEDULER_CASES += [(name, {}) for name in sorted(_SCHEDULER_REQUIRED)]  # the same, all fields derived


@pytest.mark.parametrize(("name", "given"), _SCHEDULER_CASES)
def test_every_catalogued_scheduler_drives_the_lr_as_torch_does(name, given):
    """An mlp on digits under each scheduler (given values, or every field derived from the run):
    the ``lr`` metric of each step equals the learning rate torch's own scheduler gives when
    stepped the same way (per batch for step schedules, per epoch otherwise)."""
    split = builtin_split("digits")
    sched = {"name": name, **given}
    spec = make_spec(
        split, solver={"name": "sgd", "base_lr": 0.05, "momentum": 0.9},
        scheduler=sched, epochs=4, batch_size=32,
    )
    result, sink = _run(spec, split)
    assert result.status == "succeeded"
    lrs = [v for _, v in sink.series("lr")]

    entry = catalog.scheduler(name)
    base_lr = spec.solver_hparams()["lr"]
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr, momentum=0.9)
    params = {k: v for k, v in spec.scheduler_hparams().items() if v is not None}
    ref = catalog.load_class(entry)(dummy, **params) if name != "constant" else None
    val_losses = [v for _, v in sink.series("val/loss")]
    steps_per_epoch = result.step // 4
    expected = []
    for epoch in range(4):
        for _ in range(steps_per_epoch):
            expected.append(dummy.param_groups[0]["lr"])
            dummy.step()
            if ref is not None and entry.interval == "step":
                ref.step()
        if ref is not None and entry.interval == "epoch":
            ref.step()
        elif ref is not None and entry.interval == "metric":
            ref.step(val_losses[epoch])
    assert lrs == pytest.approx(expected, rel=1e-12, abs=0)


def test_adam_reaches_95_percent_on_digits():
    split = builtin_split("digits")
    spec = make_spec(
        split, solver={"name": "adam", "base_lr": 1e-3}, architecture={"name": "mlp"}, epochs=15, batch_size=64,
    )
    result, _ = _run(spec, split)
    assert result.summary["test/accuracy"] >= 0.95


def test_same_seed_gives_identical_metrics_and_another_seed_does_not():
    split = builtin_split("wine")
    arch = {"name": "mlp", "depth": 2, "width": 32, "dropout": 0.2}
    runs = [_run(make_spec(split, architecture=arch, epochs=3, batch_size=16, seed=s), split)[1] for s in (7, 7, 8)]
    assert _values(runs[0]) == _values(runs[1])
    assert _values(runs[0]) != _values(runs[2])


@pytest.mark.parametrize("diagnostics_every", [1, 4])
def test_a_resumed_run_ends_with_the_same_weights_and_metrics(diagnostics_every, tmp_path):
    """Also the diagnostics: with 7 steps an epoch the checkpoint after epoch 2 (step 14) is not a
    multiple of 4, so a resumed run that counted from its resume point would measure at other steps."""
    split = builtin_split("wine")
    arch = {"name": "mlp", "depth": 2, "width": 32, "dropout": 0.1, "normalization": "batch"}
    spec = make_spec(
        split, architecture=arch, epochs=4, batch_size=16, gradient_noise=0.01,
        scheduler={"name": "cosineannealinglr", "warmup_steps": 5}, diagnostics_every=diagnostics_every,
    )
    whole, whole_sink = _run(spec, split)

    ckpt = tmp_path / "last.pt"
    steps_per_epoch = whole.step // 4
    interrupt_at = 2 * steps_per_epoch + 3  # mid-way through the third epoch
    first, first_sink = _run(spec, split, checkpoint_path=ckpt, should_cancel=lambda p: p.step == interrupt_at)
    assert first.status == "cancelled" and first.step == interrupt_at
    resumed, resumed_sink = _run(spec, split, checkpoint_path=ckpt, resume_from=ckpt)

    assert resumed.status == "succeeded"
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    # steps re-run after the checkpoint re-emit the same values; together every (name, step) is covered
    merged = {**_values(first_sink), **_values(resumed_sink)}
    assert merged == _values(whole_sink)
    assert min(p.step for p in resumed_sink.points) == 2 * steps_per_epoch + 1
    measured = [s for s, _ in resumed_sink.series("grad_norm")]
    assert measured == [s for s in range(2 * steps_per_epoch + 1, whole.step + 1) if (s - 1) % diagnostics_every == 0]


def test_a_checkpoint_written_before_a_training_field_existed_resumes_with_its_default(tmp_path):
    """A checkpoint whose spec lacks ``diagnostics_every`` (written by an older worker) is the same
    spec once the default is filled in: the run resumes instead of being refused."""
    from worker.engine import checkpoint

    split = builtin_split("iris")
    spec = make_spec(split, epochs=3, batch_size=32)
    whole, _ = _run(spec, split)
    ckpt = tmp_path / "last.pt"
    _run(spec, split, checkpoint_path=ckpt, should_cancel=lambda p: p.epoch == 1)
    state = checkpoint.load(ckpt)
    del state["spec"]["training"]["diagnostics_every"]
    checkpoint.save(ckpt, state)
    resumed, _ = _run(spec, split, resume_from=ckpt)
    assert resumed.status == "succeeded"
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    state["spec"]["training"]["seed"] += 1
    checkpoint.save(ckpt, state)
    with pytest.raises(ValueError, match="different spec"):
        _run(spec, split, resume_from=ckpt)


def test_cancel_takes_effect_before_the_next_step():
    split = builtin_split("digits")
    asked: list[Progress] = []

    def cancel_at_5(progress: Progress) -> bool:
        asked.append(progress)
        return progress.step == 5

    result, sink = _run(make_spec(split, epochs=3, batch_size=32), split, should_cancel=cancel_at_5)
    assert result.status == "cancelled" and result.step == 5
    assert [p.step for p in asked] == list(range(6))
    assert [s for s, _ in sink.series("train/loss")] == [1, 2, 3, 4, 5]


def test_a_diverging_run_fails_naming_the_first_bad_step():
    split = builtin_split("digits")
    solver = {"name": "sgd", "base_lr": 1e6}
    spec = make_spec(split, solver=solver, architecture={"name": "mlp", "depth": 3, "width": 64}, epochs=5)
    sink = ListSink()
    with pytest.raises(Diverged) as info:
        train(spec, prepare(split), sink=sink)
    message = str(info.value)
    assert re.fullmatch(r"diverged at step \d+ \(loss = (nan|inf|-inf)\); try a lower base_lr", message), message
    recorded = sink.series("train/loss")
    assert all(math.isfinite(v) for _, v in recorded)
    assert info.value.step == len(recorded) + 1


def _ending(how: str, split):
    """(spec, train keyword arguments, exception expected) of a run on ``split`` that ends ``how``,
    in its second epoch unless it succeeds."""
    from worker.engine.stopping import TimeLimit, TimeLimitExceeded

    if how == "diverged":
        spec = make_spec(split, solver={"name": "sgd", "base_lr": 1e6},
                         architecture={"name": "mlp", "depth": 3, "width": 64}, epochs=5, batch_size=32)
        return spec, {}, Diverged
    spec = make_spec(split, epochs=3, batch_size=32)
    if how == "cancelled":
        return spec, {"should_cancel": lambda p: p.step == 5}, None
    if how == "time_limit":
        limit = TimeLimit(1.0)

        def spend_it_at_step_5(progress: Progress) -> bool:
            if progress.step == 5:
                limit.spent_before_s = 3600.0
            return False

        return spec, {"should_cancel": spend_it_at_step_5, "time_limit": limit}, TimeLimitExceeded
    return spec, {}, None


@pytest.mark.parametrize("how", ["succeeded", "cancelled", "time_limit", "diverged"])
def test_on_end_tells_the_last_recorded_step_and_the_epochs_completed(how):
    """However a run ends, ``on_end`` gets the number of train/loss points recorded as its step
    and the number of validation passes as its epoch (what the finished run's row shows)."""
    split = builtin_split("iris")
    spec, kwargs, raises = _ending(how, split)
    ended: list[Progress] = []
    sink = ListSink()
    with pytest.raises(raises) if raises else contextlib.nullcontext():
        train(spec, prepare(split), sink=sink, on_end=ended.append, **kwargs)
    (progress,) = ended
    steps, epochs = len(sink.series("train/loss")), len(sink.series("val/loss"))
    assert (progress.step, progress.epoch) == (steps, epochs)
    assert progress.total_steps == spec.training.epochs * math.ceil(len(split.x_train) / 32)
    if how == "succeeded":
        assert (steps, epochs) == (progress.total_steps, 3)
    elif how == "diverged":
        assert steps < progress.total_steps
    else:
        assert (steps, epochs) == (5, 1)


def test_full_batch_gd_takes_one_exact_gradient_step_per_epoch():
    """batch_size null: one step per epoch, θ₁ = θ₀ − η ∇L(θ₀) over the whole train part."""
    split = builtin_split("iris")
    spec = make_spec(split, solver={"name": "sgd", "base_lr": 0.5}, architecture={"name": "linear"},
                     batch_size=None, epochs=1)
    data = prepare(split)
    torch.manual_seed(spec.training.seed)
    initial = torch.nn.Linear(4, 3)  # same construction order as the engine: same initial weights
    w, b = initial.weight.detach().clone().requires_grad_(), initial.bias.detach().clone().requires_grad_()
    loss = torch.nn.functional.cross_entropy(data.train.x @ w.T + b, data.train.y)
    gw, gb = torch.autograd.grad(loss, (w, b))
    result = train(spec, data, sink=ListSink())
    assert result.step == 1
    torch.testing.assert_close(result.model.fc.weight, w - 0.5 * gw, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(result.model.fc.bias, b - 0.5 * gb, rtol=1e-6, atol=1e-7)


def test_gradient_noise_anneals_by_step_from_its_own_seed_then_clipping_applies():
    """Full-batch SGD, two steps: g_t + N(0, η/(1+t)^0.55) drawn from a generator seeded with
    seed + 2, then clamped to ±clip_value; θ_{t+1} = θ_t − lr·g_t."""
    eta, clip, lr = 0.01, 0.3, 0.5
    split = builtin_split("iris")
    spec = make_spec(split, solver={"name": "sgd", "base_lr": lr}, architecture={"name": "linear"},
                     batch_size=None, epochs=2, gradient_noise=eta, grad_clip_value=clip)
    data = prepare(split)
    torch.manual_seed(spec.training.seed)
    initial = torch.nn.Linear(4, 3)  # same construction order as the engine: same initial weights
    w, b = (t.detach().clone().requires_grad_() for t in (initial.weight, initial.bias))
    noise = torch.Generator().manual_seed(spec.training.seed + 2)
    clipped = 0
    for t in range(2):
        loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(data.train.x, w, b), data.train.y)
        std = math.sqrt(eta / (1 + t) ** 0.55)
        with torch.no_grad():
            for p, g in zip((w, b), torch.autograd.grad(loss, (w, b))):
                g.add_(torch.randn(g.shape, generator=noise), alpha=std)
                clipped += int((g.abs() > clip).sum())
                p.add_(g.clamp_(-clip, clip), alpha=-lr)
    assert clipped > 0
    result = train(spec, data, sink=ListSink())
    torch.testing.assert_close(result.model.fc.weight, w, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(result.model.fc.bias, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("solver", [{"name": "lbfgs", "base_lr": 1.0, "max_iter": 5}, {"name": "rprop", "base_lr": 0.01}])
def test_weight_decay_of_a_solver_without_one_is_an_l2_penalty_in_the_loss(solver):
    """L-BFGS and Rprop take no weight_decay; the experiment's becomes weight_decay/2 * ||theta||^2
    in the objective.  Oracle: torch.optim's own L-BFGS / Rprop on that objective by hand, from the
    same initial weights (full batch, two steps).  train/loss stays the data loss."""
    wd = 0.3
    split = builtin_split("iris")
    spec = make_spec(split, solver={**solver, "weight_decay": wd}, architecture={"name": "linear"},
                     batch_size=None, epochs=2)
    data = prepare(split)
    torch.manual_seed(spec.training.seed)
    initial = torch.nn.Linear(4, 3)  # same construction order as the engine: same initial weights
    w, b = (t.detach().clone().requires_grad_() for t in (initial.weight, initial.bias))
    hparams = {k: v for k, v in spec.solver_hparams().items() if k in ("lr", "max_iter")}
    ref = getattr(torch.optim, "LBFGS" if solver["name"] == "lbfgs" else "Rprop")([w, b], **hparams)

    def data_loss():
        return torch.nn.functional.cross_entropy(data.train.x @ w.T + b, data.train.y)

    def closure():
        ref.zero_grad()
        loss = data_loss() + 0.5 * wd * (w.square().sum() + b.square().sum())
        loss.backward()
        return loss

    first_loss = data_loss().item()
    for _ in range(2):
        if solver["name"] == "lbfgs":
            ref.step(closure)
        else:
            closure()
            ref.step()
    sink = ListSink()
    result = train(spec, data, sink=sink)
    torch.testing.assert_close(result.model.fc.weight, w, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(result.model.fc.bias, b, rtol=1e-5, atol=1e-6)
    assert sink.series("train/loss")[0][1] == pytest.approx(first_loss, rel=1e-6)  # no penalty in it


@pytest.mark.parametrize("clip", [1e-3, 1e-2])
def test_gradient_clipping_bounds_the_update(clip):
    """With plain SGD and a clipped global norm c < ‖g‖ the update norm is exactly η·c."""
    split = builtin_split("digits")
    lr = 0.1
    spec = make_spec(split, solver={"name": "sgd", "base_lr": lr}, grad_clip_norm=clip, batch_size=64)
    result, sink = _run(spec, split, should_cancel=lambda p: p.step == 1)
    (step, ratio), = sink.series("update_ratio")
    (_, grad_norm), = sink.series("grad_norm")
    assert grad_norm > clip
    torch.manual_seed(spec.training.seed)
    from worker.architectures import build_model

    initial = build_model("mlp", {"depth": 1, "width": 16}, (64,), 10)
    weight_norm = torch.nn.utils.get_total_norm(list(initial.parameters())).item()
    assert ratio * weight_norm == pytest.approx(lr * clip, rel=1e-4)


@pytest.mark.parametrize(("solver", "clip_norm", "clip_value"), [
    ({"name": "sgd", "base_lr": 0.1}, None, None),
    ({"name": "sgd", "base_lr": 0.1}, 0.05, None),
    ({"name": "sgd", "base_lr": 0.1}, None, 0.02),
    ({"name": "sgd", "base_lr": 0.1}, 0.05, 0.02),
    ({"name": "lbfgs", "base_lr": 1.0, "max_iter": 3}, 0.05, 0.02),  # the closure path: its first evaluation
])
def test_grad_norm_is_the_norm_before_any_clipping(solver, clip_norm, clip_value):
    """One full-batch step on iris: the recorded grad_norm is ‖∇L(θ₀)‖ from torch.autograd on the
    same initial model and data, whatever clipping then does to the gradients (and it does: the
    norm after clipping, computed the same way, is different)."""
    from worker.architectures import build_model

    split = builtin_split("iris")
    architecture = {"name": "mlp", "depth": 1, "width": 16}
    spec = make_spec(split, solver=solver, architecture=architecture, batch_size=None,
                     grad_clip_norm=clip_norm, grad_clip_value=clip_value)
    data = prepare(split)
    torch.manual_seed(spec.training.seed)  # the engine's construction order: the same initial weights
    initial = build_model("mlp", spec.architecture_hparams(), data.feature_shape, data.n_outputs)
    loss = torch.nn.functional.cross_entropy(initial(data.train.x), data.train.y)
    grads = torch.autograd.grad(loss, list(initial.parameters()))
    expected = torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])).item()
    clipped = torch.cat([g.reshape(-1) for g in grads])
    if clip_value is not None:
        clipped = clipped.clamp(-clip_value, clip_value)
    if clip_norm is not None:
        clipped = clipped * min(1.0, clip_norm / (clipped.norm().item() + 1e-6))
    assert (clip_norm is None and clip_value is None) or clipped.norm().item() < 0.9 * expected

    result, sink = _run(spec, split)
    (step, grad_norm), = sink.series("grad_norm")
    assert step == result.step == 1
    assert grad_norm == pytest.approx(expected, rel=1e-5)


def test_diagnostics_are_measured_every_nth_step_and_change_nothing_else():
    """diagnostics_every = 3 records grad_norm and update_ratio on steps 1, 4, 7, … only, with the
    values a run measuring every step records there; train/loss and lr stay at every step, equal."""
    split = builtin_split("wine")
    runs = {k: _run(make_spec(split, epochs=2, batch_size=16, diagnostics_every=k), split) for k in (1, 3)}
    every, sparse = _values(runs[1][1]), _values(runs[3][1])
    steps = runs[1][0].step
    assert steps > 6
    for name in ("grad_norm", "update_ratio"):
        measured = [s for s, _ in runs[3][1].series(name)]
        assert measured == [s for s in range(1, steps + 1) if s % 3 == 1], name
        assert [s for s, _ in runs[1][1].series(name)] == list(range(1, steps + 1)), name
    assert {k: v for k, v in every.items() if k[0] not in ("grad_norm", "update_ratio") or k[1] % 3 == 1} == sparse


@pytest.mark.parametrize(
    ("dataset", "architecture", "loss"),
    [
        ("iris", {"name": "linear"}, "hinge"),
        ("wine", {"name": "mlp", "normalization": "layer", "activation": "gelu"}, None),
        ("breast_cancer", {"name": "cnn1d", "channels": 8}, None),
        ("digits", {"name": "cnn2d", "channels": 4, "hidden": 16}, None),
        ("digits", {"name": "resnet", "width": 4, "blocks": 1}, None),
        ("iris", {"name": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff": 16}, None),
        ("spirals", {"name": "mlp", "width": 32, "activation": "tanh"}, "cross_entropy"),
    ],
)
def test_every_architecture_trains_and_reports_accuracy_as_sklearn_computes_it(dataset, architecture, loss):
    from sklearn.metrics import accuracy_score

    split = builtin_split(dataset)
    spec = make_spec(split, architecture=architecture, epochs=2, batch_size=64, **({"loss": loss} if loss else {}))
    data = prepare(split)
    result = train(spec, data, sink=ListSink())
    result.model.eval()
    with torch.no_grad():
        predicted = result.model(data.test.x).argmax(dim=-1).numpy()
    assert result.summary["test/accuracy"] == pytest.approx(accuracy_score(split.y_test, predicted))


def test_regression_reports_mse_and_r2_as_sklearn_computes_them():
    from sklearn.metrics import mean_squared_error, r2_score

    split = builtin_split("diabetes")
    spec = make_spec(split, architecture={"name": "linear"}, epochs=30, batch_size=32)
    data = prepare(split)
    result = train(spec, data, sink=ListSink())
    result.model.eval()
    with torch.no_grad():
        predicted = result.model(data.test.x).squeeze(-1).numpy()
    target = data.test.y.numpy()
    assert result.summary["test/mse"] == pytest.approx(mean_squared_error(target, predicted), rel=1e-5)
    assert result.summary["test/r2"] == pytest.approx(r2_score(target, predicted), rel=1e-5)
    # R² does not depend on the target's scale, so it is the same in the original units
    mean, std = data.target_scale
    assert r2_score(split.y_test, predicted * std + mean) == pytest.approx(result.summary["test/r2"], rel=1e-5)
    assert result.summary["test/r2"] > 0.3


def test_epoch_metrics_sit_on_the_epochs_last_step_and_names_are_unique_per_step():
    split = builtin_split("iris")
    result, sink = _run(make_spec(split, epochs=3, batch_size=32), split)
    per_epoch = result.step // 3
    keys = [(p.name, p.step) for p in sink.points]
    assert len(keys) == len(set(keys))
    for name in ("train/epoch_loss", "train/accuracy", "val/loss", "val/accuracy", "epoch_time", "samples_per_s"):
        assert [s for s, _ in sink.series(name)] == [per_epoch, 2 * per_epoch, 3 * per_epoch], name
    assert [s for s, _ in sink.series("test/accuracy")] == [result.step]
    epoch_loss = sink.series("train/epoch_loss")[0][1]
    batch_losses = [v for s, v in sink.series("train/loss") if s <= per_epoch]
    sizes = [32] * (per_epoch - 1) + [len(split.x_train) - 32 * (per_epoch - 1)]
    assert epoch_loss == pytest.approx(np.average(batch_losses, weights=sizes), rel=1e-6)
