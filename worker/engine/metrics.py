"""Losses and the quality measures the engine reports: accuracy for classification, MSE and R²
for regression.  Each evaluation returns plain floats keyed by the metric's short name."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _regression(fn) -> LossFn:
    def loss(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return fn(out.reshape(y.shape).float(), y, reduction=reduction)

    return loss


def _classification(fn) -> LossFn:
    def loss(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return fn(out.float(), y, reduction=reduction)

    return loss


# hinge is the multiclass SVM loss (Weston & Watkins form, as torch's MultiMarginLoss)
LOSSES: dict[str, LossFn] = {
    "cross_entropy": _classification(F.cross_entropy),
    "hinge": _classification(F.multi_margin_loss),
    "mse": _regression(F.mse_loss),
    "huber": _regression(F.huber_loss),
}


def quality_names(task: str) -> tuple[str, ...]:
    return ("accuracy",) if task == "classification" else ("mse", "r2")


def r2_score(sse: float, y_sum: float, y_sq_sum: float, n: int) -> float:
    """1 − SS_res / SS_tot, with SS_tot around the evaluated targets' own mean."""
    ss_tot = y_sq_sum - y_sum * y_sum / n
    return 1.0 - sse / ss_tot if ss_tot > 0 else float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, chunks, loss_fn: LossFn, task: str, autocast) -> dict[str, float]:
    """Mean loss and quality of ``model`` over ``chunks`` of (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    n = 0
    correct = sse = y_sum = y_sq = 0.0
    stats: list[torch.Tensor] = []
    for x, y in chunks:
        with autocast():
            out = model(x)
        loss_sum = loss_sum + loss_fn(out, y, reduction="sum").double().cpu()
        n += y.shape[0]
        if task == "classification":
            stats.append((out.argmax(dim=-1) == y).sum().double())
        else:
            pred = out.reshape(y.shape).double()
            yd = y.double()
            stats.append(torch.stack([((pred - yd) ** 2).sum(), yd.sum(), (yd * yd).sum()]))
    model.train(was_training)
    if n == 0:
        return {}
    result = {"loss": loss_sum.item() / n}
    if task == "classification":
        correct = torch.stack(stats).sum().item()
        result["accuracy"] = correct / n
    else:
        sse, y_sum, y_sq = torch.stack(stats).sum(dim=0).tolist()
        result["mse"] = sse / n
        result["r2"] = r2_score(sse, y_sum, y_sq, n)
    return result
