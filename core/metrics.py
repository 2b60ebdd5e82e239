"""Which way a metric improves.  The store ranks "best" points with it and sends the answer
with every summary and series, so the dashboard and the CLI read it instead of restating it."""

from __future__ import annotations

# "best" is the largest value for these (matched on the last path component, alone or as a
# ``_suffix``: ``val/accuracy``, ``val/top1_acc``, ``test/r2``), the smallest for every other metric
HIGHER_IS_BETTER = ("accuracy", "acc", "bacc", "r2", "f1", "precision", "recall", "auc")


def higher_is_better(name: str) -> bool:
    leaf = name.rsplit("/", 1)[-1].lower()
    return any(leaf == word or leaf.endswith("_" + word) for word in HIGHER_IS_BETTER)
