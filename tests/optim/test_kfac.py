"""K-FAC: its factors are the Fisher block factors computed sample by sample, its step is the damped
Kronecker solve, other parameters get torch's SGD with momentum, and it trains an MLP in fewer
steps than a tuned Adam."""

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from optim import KFAC


def _per_sample_loss(out, i):
    # a nonlinear per-sample loss so output gradients differ across samples and positions
    return (out[i].sin() * torch.arange(1, out[i].numel() + 1, dtype=out.dtype).reshape(out[i].shape)).sum()


def _direct_linear_factors(layer, x):
    """A = E[a a^T] (a with a trailing 1), G = E[g g^T] with g the per-sample output gradient."""
    batch = x.shape[0]
    a = torch.cat([x, torch.ones(batch, 1, dtype=x.dtype)], 1) if layer.bias is not None else x
    big_a = sum(torch.outer(a[i], a[i]) for i in range(batch)) / batch
    big_g = 0
    for i in range(batch):
        out = layer(x)
        (g,) = torch.autograd.grad(_per_sample_loss(out, i), out)
        big_g = big_g + torch.outer(g[i], g[i])
    return big_a, big_g / batch


def _direct_conv2d_factors(layer, x):
    """Grosse & Martens 2016: patches a_{i,t} by explicit slicing, A = (1/B) sum a a^T,
    G = (1/(B T)) sum g g^T over samples i and output positions t."""
    batch = x.shape[0]
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    padded = F.pad(x, (pw, pw, ph, ph))
    out = layer(x)
    positions = [(r, c) for r in range(out.shape[2]) for c in range(out.shape[3])]
    big_a = 0
    for i in range(batch):
        for r, c in positions:
            patch = padded[i, :, r * sh : r * sh + kh, c * sw : c * sw + kw].reshape(-1)
            if layer.bias is not None:
                patch = torch.cat([patch, torch.ones(1, dtype=x.dtype)])
            big_a = big_a + torch.outer(patch, patch)
    big_g = 0
    for i in range(batch):
        out = layer(x)
        (g,) = torch.autograd.grad(_per_sample_loss(out, i), out)
        for r, c in positions:
            big_g = big_g + torch.outer(g[i, :, r, c], g[i, :, r, c])
    return big_a / batch, big_g / (batch * len(positions))


def _kfac_factors(layer, x):
    """Run one batch-mean loss through KFAC and read the factors it keeps."""
    opt = KFAC(layer.parameters(), model=layer, lr=0.0, factor_decay=0.5)
    out = layer(x)
    torch.stack([_per_sample_loss(out, i) for i in range(x.shape[0])]).mean().backward()
    opt.step()
    state = opt.state[layer.weight]
    return state["A"], state["G"]


def _conv1d_as_conv2d(layer1d):
    layer2d = nn.Conv2d(
        layer1d.in_channels, layer1d.out_channels, (layer1d.kernel_size[0], 1), stride=(layer1d.stride[0], 1),
        padding=(layer1d.padding[0], 0), bias=layer1d.bias is not None, dtype=torch.float64,
    )
    with torch.no_grad():
        layer2d.weight.copy_(layer1d.weight.unsqueeze(-1))
        if layer1d.bias is not None:
            layer2d.bias.copy_(layer1d.bias)
    return layer2d


FACTOR_CASES = {
    "linear-bias": (lambda: nn.Linear(4, 3, dtype=torch.float64), (5, 4)),
    "linear-no-bias": (lambda: nn.Linear(4, 3, bias=False, dtype=torch.float64), (5, 4)),
    "conv2d-bias-padding": (lambda: nn.Conv2d(2, 3, 3, padding=1, dtype=torch.float64), (3, 2, 4, 4)),
    "conv2d-stride-no-bias": (lambda: nn.Conv2d(2, 2, 2, stride=2, bias=False, dtype=torch.float64), (2, 2, 4, 6)),
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1, dtype=torch.float64), (3, 2, 5)),
}


@pytest.mark.parametrize("make_layer, shape", FACTOR_CASES.values(), ids=FACTOR_CASES.keys())
def test_factors_equal_a_sample_by_sample_computation(make_layer, shape):
    torch.manual_seed(0)
    layer = make_layer()
    x = torch.randn(shape, dtype=torch.float64)
    got_a, got_g = _kfac_factors(layer, x)
    if isinstance(layer, nn.Linear):
        want_a, want_g = _direct_linear_factors(layer, x)
    elif isinstance(layer, nn.Conv1d):
        want_a, want_g = _direct_conv2d_factors(_conv1d_as_conv2d(layer), x.unsqueeze(-1))
    else:
        want_a, want_g = _direct_conv2d_factors(layer, x)
    torch.testing.assert_close(got_a, want_a, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_g, want_g, rtol=1e-12, atol=1e-12)


def _one_step(seed, **kwargs):
    """One KFAC step (no momentum) on a seeded 3 -> 2 linear layer over 6 samples: [W, b] before,
    its gradient, [W, b] after, and the factors A and G computed directly at the start."""
    torch.manual_seed(seed)
    layer = nn.Linear(3, 2, dtype=torch.float64)
    opt = KFAC(layer.parameters(), model=layer, momentum=0.0, **kwargs)
    x = torch.randn(6, 3, dtype=torch.float64)
    before = _weight_and_bias(layer)
    out = layer(x)
    torch.stack([_per_sample_loss(out, i) for i in range(6)]).mean().backward()
    grad = torch.cat([layer.weight.grad, layer.bias.grad[:, None]], 1)
    opt.step()
    a, g = _direct_linear_factors(layer_copy(layer, before), x)
    return before, grad, _weight_and_bias(layer), a, g


def test_step_is_the_damped_kronecker_solve():
    damping, lr = 0.05, 0.3
    before, grad, after, a, g = _one_step(1, lr=lr, damping=damping, kl_clip=None)
    # row-major vec: the Fisher block of [W, b] is G (x) A
    fisher = torch.kron(g, a) + damping * torch.eye(a.shape[0] * g.shape[0], dtype=torch.float64)
    expected = before - lr * torch.linalg.solve(fisher, grad.reshape(-1)).reshape(grad.shape)
    torch.testing.assert_close(after, expected, rtol=1e-10, atol=1e-12)


def layer_copy(layer, weight_and_bias):
    copy = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
    with torch.no_grad():
        copy.weight.copy_(weight_and_bias[:, :-1])
        copy.bias.copy_(weight_and_bias[:, -1])
    return copy


def test_kl_clip_bounds_the_updates_fisher_norm():
    kl_clip, lr, damping = 1e-6, 1.0, 1e-3
    before, grad, after, a, g = _one_step(2, lr=lr, damping=damping, kl_clip=kl_clip)
    step = (before - after).reshape(-1)
    fisher = torch.kron(g, a) + damping * torch.eye(step.numel(), dtype=torch.float64)
    unclipped = lr * torch.linalg.solve(fisher, grad.reshape(-1))
    assert unclipped @ fisher @ unclipped > 100 * kl_clip  # the clip is active
    # Ba et al. 2017: the clipped step's squared (damped) Fisher norm is kl_clip
    torch.testing.assert_close(step @ fisher @ step, torch.tensor(kl_clip, dtype=torch.float64), rtol=1e-9, atol=0)


def test_other_parameters_take_torchs_sgd_with_momentum():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 2)).double()
    reference = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 2)).double()
    opt = KFAC(model.parameters(), model=model, lr=0.1, momentum=0.9, weight_decay=0.01)
    ref_opt = torch.optim.SGD(reference[1].parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(5):
        # same weights everywhere, so the LayerNorm gets the same gradient in both models
        reference.load_state_dict(model.state_dict())
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step), dtype=torch.float64)
        for m, o in ((model, opt), (reference, ref_opt)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.step()
        for p, q in zip(model[1].parameters(), reference[1].parameters()):
            assert torch.equal(p, q), step
    assert "A" in opt.state[model[0].weight]  # while the Linear layers were K-FAC's


def test_eval_and_no_grad_passes_leave_the_factors_alone():
    torch.manual_seed(4)
    layer = nn.Linear(3, 2, dtype=torch.float64)
    opt = KFAC(layer.parameters(), model=layer)
    x = torch.randn(5, 3, dtype=torch.float64)
    layer(x).pow(2).mean().backward()
    with torch.no_grad():
        layer(100 * x)
    layer.eval()
    layer(100 * x)
    layer.train()
    opt.step()
    want_a, _ = _direct_linear_factors(layer, x)
    torch.testing.assert_close(opt.state[layer.weight]["A"], want_a, rtol=1e-12, atol=1e-12)


DIGITS_TARGET = 0.01
MAX_STEPS = 150


def _steps_to_target(make_opt):
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x[:600] / 16.0, dtype=torch.float32), torch.tensor(y[:600])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    opt = make_opt(model)
    for step in range(MAX_STEPS):
        loss = F.cross_entropy(model(x), y)
        if loss.item() < DIGITS_TARGET:
            return step
        loss.backward()
        opt.step()
        opt.zero_grad()
    return MAX_STEPS


def test_reaches_a_training_loss_in_fewer_steps_than_tuned_adam():
    adam = {lr: _steps_to_target(lambda m, lr=lr: torch.optim.Adam(m.parameters(), lr=lr)) for lr in (0.03, 0.1, 0.3)}
    best_adam = min(adam.values())
    kfac = _steps_to_target(lambda m: KFAC(m.parameters(), model=m))  # the defaults, untuned
    assert best_adam < MAX_STEPS, adam  # the grid brackets Adam's best learning rate
    assert min(adam, key=adam.get) == 0.1, adam  # an interior optimum of the grid
    assert kfac < best_adam, (kfac, adam)


INVALID = {
    "lr": dict(lr=-1.0),
    "damping": dict(damping=0.0),
    "factor_decay": dict(factor_decay=1.0),
    "inv_update_freq": dict(inv_update_freq=0),
    "momentum": dict(momentum=-0.1),
    "weight_decay": dict(weight_decay=-0.1),
    "kl_clip": dict(kl_clip=0.0),
    "model": dict(model="not a module"),
}


@pytest.mark.parametrize("name, kwargs", INVALID.items(), ids=INVALID.keys())
def test_rejects_invalid_hyperparameters_naming_them(name, kwargs):
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=name):
        KFAC(layer.parameters(), **{"model": layer, **kwargs})


def _weight_and_bias(layer):
    return torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1).clone()


def test_factors_are_the_running_average_of_per_batch_factors():
    """After each of three steps on different batches (of different sizes, with the weights
    moving in between), the stored A and G are the docstring's running average of the per-batch
    factors: the first step's as they are, then  hat <- decay * hat + (1 - decay) * batch.  The
    per-batch factors come from a direct computation on a hook-free copy of the layer with the
    weights of that step's forward pass, so keeping only the newest batch, swapping decay and
    1 - decay, or decaying the first batch in fails here."""
    torch.manual_seed(5)
    layer = nn.Linear(3, 2, dtype=torch.float64)
    decay = 0.7  # away from 0.5, so decay and 1 - decay are told apart
    opt = KFAC(layer.parameters(), model=layer, lr=0.1, factor_decay=decay, inv_update_freq=1, momentum=0.0)
    want_a = want_g = None
    start = _weight_and_bias(layer)
    for step, batch in enumerate((5, 3, 4)):
        x = torch.randn(batch, 3, dtype=torch.float64)
        a, g = _direct_linear_factors(layer_copy(layer, _weight_and_bias(layer)), x)
        if step == 0:
            want_a, want_g = a, g
        else:
            want_a, want_g = decay * want_a + (1 - decay) * a, decay * want_g + (1 - decay) * g
            # the newest batch alone is far from the average: the check can tell them apart
            assert (a - want_a).abs().max() > 1e-3 and (g - want_g).abs().max() > 1e-3
        opt.zero_grad()
        out = layer(x)
        torch.stack([_per_sample_loss(out, i) for i in range(batch)]).mean().backward()
        opt.step()
        state = opt.state[layer.weight]
        torch.testing.assert_close(state["A"], want_a, rtol=1e-12, atol=1e-12, msg=f"A after step {step + 1}")
        torch.testing.assert_close(state["G"], want_g, rtol=1e-12, atol=1e-12, msg=f"G after step {step + 1}")
    assert not torch.equal(_weight_and_bias(layer), start)  # the weights moved between the batches


EIGEN_KEYS = ("eigvals_A", "eigvecs_A", "eigvals_G", "eigvecs_G")
CADENCE_CASES = {"every-3": (3, 8, {1, 4, 7}), "every-1": (1, 4, {1, 2, 3, 4}), "every-5": (5, 7, {1, 6})}


@pytest.mark.parametrize("freq, steps, recomputed", CADENCE_CASES.values(), ids=CADENCE_CASES.keys())
def test_eigendecompositions_refresh_every_inv_update_freq_steps(freq, steps, recomputed):
    """The code's convention: the eigendecompositions are recomputed when the number of earlier
    factor updates is a multiple of ``inv_update_freq``, i.e. at steps 1, freq + 1, 2 freq + 1, ...
    (1-based).  At those steps each stored eigendecomposition is exactly ``eigh`` of the current
    running factor; at every other step it is bit for bit the previous step's, and so stale (the
    factors moved with the new batch).  Recomputing every step, never after the first, or one
    step off the cadence fails here."""
    from optim.kfac import _eigh

    torch.manual_seed(6)
    layer = nn.Linear(3, 2, dtype=torch.float64)
    opt = KFAC(layer.parameters(), model=layer, lr=0.05, inv_update_freq=freq, factor_decay=0.5)
    previous = None
    for step in range(1, steps + 1):
        x = torch.randn(4, 3, dtype=torch.float64)
        opt.zero_grad()
        out = layer(x)
        torch.stack([_per_sample_loss(out, i) for i in range(4)]).mean().backward()
        opt.step()
        state = opt.state[layer.weight]
        current = {k: state[k].clone() for k in EIGEN_KEYS}
        fresh = dict(zip(EIGEN_KEYS, (*_eigh(state["A"]), *_eigh(state["G"]))))
        if step in recomputed:
            for k in EIGEN_KEYS:
                assert torch.equal(current[k], fresh[k]), f"step {step}: {k} is not eigh of the current factor"
                if previous is not None and k.startswith("eigvals"):
                    assert not torch.equal(current[k], previous[k]), f"step {step}: {k} did not change"
        else:
            for k in EIGEN_KEYS:
                assert torch.equal(current[k], previous[k]), f"step {step}: {k} changed between refreshes"
            assert not torch.equal(current["eigvals_A"], fresh["eigvals_A"]), f"step {step}: the check is vacuous"
        previous = current


FISHER_CASES = {"bias": True, "no-bias": False}


@pytest.mark.parametrize("bias", FISHER_CASES.values(), ids=FISHER_CASES.keys())
def test_one_sample_factors_are_the_layers_empirical_fisher_block(bias):
    """For one sample the empirical Fisher block of the layer, vec(dL/d[W, b]) vec(dL/d[W, b])^T
    with the gradient from autograd, is exactly G (x) A: dL/d[W, b] = g a^T with a = (x, 1), so its
    row-major vec is g (x) a and the block is (g g^T) (x) (a a^T).  With the batch-mean loss and
    B = 1, K-FAC's A = a a^T and G = (B g)(B g)^T / B = g g^T, so the Kronecker product of its
    stored factors, in that order, must reproduce the block to rounding; a factor in the wrong
    order, the bias column misplaced, or a stray scale would not."""
    torch.manual_seed(7)
    layer = nn.Linear(3, 2, bias=bias, dtype=torch.float64)
    opt = KFAC(layer.parameters(), model=layer, lr=0.0)
    x = torch.randn(1, 3, dtype=torch.float64)
    y = torch.tensor([1])
    F.cross_entropy(layer(x), y).backward()  # mean over the batch of one, torch's default
    grads = [layer.weight.grad] + ([layer.bias.grad[:, None]] if bias else [])
    vec = torch.cat(grads, 1).reshape(-1)  # row-major vec of [dL/dW, dL/db]
    fisher = torch.outer(vec, vec)
    opt.step()
    state = opt.state[layer.weight]
    assert state["A"].shape == (3 + bias, 3 + bias) and state["G"].shape == (2, 2)
    torch.testing.assert_close(torch.kron(state["G"], state["A"]), fisher, rtol=1e-12, atol=1e-15)
    assert fisher.abs().max() > 1e-3  # a non-trivial block
