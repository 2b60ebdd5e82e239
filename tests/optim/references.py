"""Transcriptions of the published algorithms that optimizers without a torch twin are held to
(LAMB, Lion, LARS, AdaBound, RandomSearch's documented rule), each with its defaults and the
hyperparameter cases it is run under; the checks are in test_paper_parity.py."""

import math

import pytest
import torch

# -- LAMB: Algorithm 2 of You et al. (2019), phi = identity ---------------------------------------

LAMB_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)


class ReferenceLAMB(torch.optim.Optimizer):
    """Algorithm 2 of the paper, one layer (tensor) at a time, straight from the formulas."""

    def __init__(self, params, lr, betas, eps, weight_decay, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                s["t"] += 1
                t = s["t"]
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                m_hat = s["m"] / (1 - b1**t)
                v_hat = s["v"] / (1 - b2**t)
                r = m_hat / (torch.sqrt(v_hat) + group["eps"]) + group["weight_decay"] * p
                weight_norm = torch.sqrt((p * p).sum())
                update_norm = torch.sqrt((r * r).sum())
                ratio = weight_norm / update_norm if weight_norm > 0 and update_norm > 0 else 1.0
                p.copy_(p - group["lr"] * ratio * r)


LAMB_CASES = [
    pytest.param({}, None, id="paper-defaults"),
    pytest.param(dict(lr=1e-2, weight_decay=0.01), dict(lr=3e-3), id="weight-decay-two-lrs"),
    pytest.param(dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-3), dict(weight_decay=0.1), id="betas-eps-group-decay"),
    pytest.param(dict(lr=5e-3, weight_decay=0.01, maximize=True), None, id="maximize"),
]


# -- Lion: Algorithm 2 of Chen et al. (2023) -----------------------------------------------------

LION_DEFAULTS = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)


class ReferenceLion(torch.optim.Optimizer):
    """Algorithm 2 of the paper, one tensor at a time, straight from the formulas."""

    def __init__(self, params, lr, betas, weight_decay, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                c = beta1 * m + (1 - beta1) * g
                p.copy_(p - lr * (torch.sign(c) + wd * p))
                m.copy_(beta2 * m + (1 - beta2) * g)


LION_CASES = [
    pytest.param({}, None, id="paper-defaults"),
    pytest.param(dict(lr=3e-3, weight_decay=0.5), dict(lr=1e-3), id="weight-decay-two-lrs"),
    pytest.param(dict(lr=2e-3, betas=(0.5, 0.9)), dict(weight_decay=0.1), id="betas-group-decay"),
    pytest.param(dict(lr=1e-3, weight_decay=0.2, maximize=True), None, id="maximize"),
]


# -- LARS: Algorithm 1 of You et al. (2017) ------------------------------------------------------

# The paper gives momentum 0.9 and eta = 0.001; lr (its gamma_0) and eps have no published
# default: LARS uses 1.0 and 1e-8 (the usual implementations').
LARS_PAPER_DEFAULTS = dict(momentum=0.9, weight_decay=0.0, trust_coefficient=1e-3)
LARS_DEFAULTS = dict(lr=1.0, eps=1e-8, exclude_1d=False, **LARS_PAPER_DEFAULTS)


class ReferenceLARS(torch.optim.Optimizer):
    """Algorithm 1 of the paper, one layer (tensor) at a time, straight from the formulas:
    local = eta ||w|| / (||g|| + beta ||w|| + eps); v = m v + lr local (g + beta w); w = w - v."""

    def __init__(self, params, maximize=False, **hyper):
        super().__init__(params, dict(maximize=maximize, **hyper))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta, eta = group["weight_decay"], group["trust_coefficient"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                w_norm = torch.sqrt((p * p).sum())
                g_norm = torch.sqrt((g * g).sum())
                if group["exclude_1d"] and p.dim() <= 1:
                    local = 1.0
                elif w_norm > 0 and g_norm > 0:
                    local = eta * w_norm / (g_norm + beta * w_norm + group["eps"])
                else:
                    local = 1.0
                v = self.state[p].setdefault("v", torch.zeros_like(p))
                v.copy_(group["momentum"] * v + group["lr"] * local * (g + beta * p))
                p.copy_(p - v)


LARS_CASES = [
    pytest.param({}, None, id="defaults"),
    pytest.param(dict(lr=5.0, weight_decay=5e-4), dict(lr=2.0), id="weight-decay-two-lrs"),
    pytest.param(dict(lr=3.0, momentum=0.0, trust_coefficient=0.01), None, id="no-momentum"),
    pytest.param(dict(lr=3.0, exclude_1d=True, weight_decay=1e-3), dict(lr=0.05), id="exclude-1d"),
    pytest.param(dict(lr=2.0, eps=0.5, momentum=0.5), dict(weight_decay=0.1), id="large-eps-group-decay"),
    pytest.param(dict(lr=4.0, weight_decay=1e-3, maximize=True), None, id="maximize"),
]


# -- AdaBound / AdaBoundW: the authors' algorithm (Luo et al., 2019) ------------------------------

ADABOUND_DEFAULTS = dict(
    lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0, amsbound=False
)


class ReferenceAdaBound(torch.optim.Optimizer):
    """The authors' AdaBound / AdaBoundW step, one tensor at a time, from the formulas:
    eta_t = clip(lr * sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v_t) + eps), lower(t), upper(t))."""

    def __init__(self, params, decoupled, maximize=False, **hyper):
        super().__init__(params, dict(decoupled=decoupled, maximize=maximize, **hyper))
        for group in self.param_groups:
            group["lr_at_start"] = group["lr"]

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, wd, eps, gamma = group["lr"], group["weight_decay"], group["eps"], group["gamma"]
            final_lr = group["final_lr"] * lr / group["lr_at_start"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p), v_max=torch.zeros_like(p))
                s["t"] += 1
                t = s["t"]
                if not group["decoupled"]:
                    g = g + wd * p
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                s["v_max"] = torch.maximum(s["v_max"], s["v"])
                v = s["v_max"] if group["amsbound"] else s["v"]
                adam_step = lr * math.sqrt(1 - b2**t) / (1 - b1**t) / (torch.sqrt(v) + eps)
                lower = final_lr * (1 - 1 / (gamma * t + 1))
                upper = final_lr * (1 + 1 / (gamma * t))
                new = p - torch.clamp(adam_step, lower, upper) * s["m"]
                if group["decoupled"]:
                    new = new - wd * p
                p.copy_(new)


# gamma well above the paper's 1e-3 makes the bounds bite within 60 steps, so the clipping is tested.
ADABOUND_CASES = [
    pytest.param({}, None, id="paper-defaults"),
    pytest.param(dict(lr=1e-2, final_lr=0.05, gamma=0.3), dict(lr=3e-3), id="tight-bounds-two-lrs"),
    pytest.param(dict(lr=1e-2, gamma=0.1, weight_decay=1e-2), dict(weight_decay=0.0), id="weight-decay"),
    pytest.param(dict(lr=1e-2, gamma=0.1, amsbound=True, weight_decay=1e-3), None, id="amsbound"),
    pytest.param(dict(lr=1e-2, gamma=0.05, maximize=True, weight_decay=1e-3), None, id="maximize"),
]


# -- RandomSearch: its documented rule -----------------------------------------------------------

RANDOM_SEARCH_DEFAULTS = dict(lr=1.0, sigma=0.1, n_samples=1, decay=1.0)


class ReferenceRandomSearch:
    """The documented rule: candidates theta + lr * sigma * decay^t * z, z ~ N(0, I) drawn from a
    CPU generator seeded with ``seed``, in parameter order; move to the best strictly lower one."""

    def __init__(self, groups, seed, lr=1.0, sigma=0.1, n_samples=1, decay=1.0):
        self.groups = [{"lr": lr, "sigma": sigma, "decay": decay, **g} for g in groups]
        self.n_samples, self.t = n_samples, 0
        self.generator = torch.Generator().manual_seed(seed)

    def zero_grad(self, set_to_none=True):
        for g in self.groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self, closure):
        closure = torch.enable_grad()(closure)  # the harness's closure calls backward()
        start = [[p.clone() for p in g["params"]] for g in self.groups]
        best_loss, best = closure().item(), start
        for _ in range(self.n_samples):
            candidate = [
                [p0 + g["lr"] * g["sigma"] * g["decay"] ** self.t * torch.randn(p0.shape, generator=self.generator,
                                                                                dtype=p0.dtype)
                 for p0 in group_start]
                for g, group_start in zip(self.groups, start)
            ]
            for g, values in zip(self.groups, candidate):
                for p, v in zip(g["params"], values):
                    p.copy_(v)
            loss = closure().item()
            if loss < best_loss:
                best_loss, best = loss, candidate
        for g, values in zip(self.groups, best):
            for p, v in zip(g["params"], values):
                p.copy_(v)
        self.t += 1


RANDOM_SEARCH_CASES = [
    pytest.param(dict(seed=0), None, id="defaults"),
    pytest.param(dict(seed=1, sigma=0.05, n_samples=3), dict(lr=0.5), id="three-samples-two-lrs"),
    pytest.param(dict(seed=2, lr=0.3, decay=0.97, n_samples=2), dict(sigma=0.3), id="decay-group-sigma"),
]
