"""``descent bench eightbit``'s table: one row per model and state, the 8-bit row's difference the
paired per-seed differences' mean and sample sd (numpy's, as the oracle), bytes per parameter
from the recorded state bytes.  The quick run itself is in test_cli.py."""

from __future__ import annotations

import numpy as np

from bench.eightbit import MODELS, table
from bench.table import parse_markdown, render


def _runs(accuracies: list[float], state_bytes: int, params: int = 1000) -> list[dict]:
    return [{"accuracy": a, "state_bytes": state_bytes, "params": params, "seconds": 1.0} for a in accuracies]


def test_table_rows_and_paired_differences():
    full, eight = [97.0, 96.5, 98.0], [96.8, 96.9, 97.5]
    runs = {
        ("mlp", "32-bit"): _runs(full, 8004),
        ("mlp", "8-bit"): _runs(eight, 2104),
        ("cnn1d", "32-bit"): _runs([80.0, 81.0, 79.0], 8004, 2000),
        ("cnn1d", "8-bit"): _runs([80.5, 80.0, 79.5], 2104, 2000),
    }
    t = table(runs, [0, 1, 2], 30)
    rows = parse_markdown(render(t, markdown=True))[0]
    assert [(r["model"], r["state"]) for r in rows] == [
        (MODELS["mlp"][0], "32-bit"), (MODELS["mlp"][0], "8-bit"),
        (MODELS["cnn1d"][0], "32-bit"), (MODELS["cnn1d"][0], "8-bit"),
    ]
    mlp32, mlp8 = rows[0], rows[1]
    assert mlp32["Δ vs 32-bit, points"] == "-"
    diff = np.array(eight) - np.array(full)
    assert mlp8["Δ vs 32-bit, points"] == f"{diff.mean():.2f} ± {diff.std(ddof=1):.2f}"
    assert mlp8["test accuracy % (mean ± sd)"] == f"{np.mean(eight):.2f} ± {np.std(eight, ddof=1):.2f}"
    assert mlp8["bytes/param"] == "2.10" and mlp32["bytes/param"] == "8.00"
    assert rows[3]["bytes/param"] == "1.05" and mlp8["state bytes"] == "2,104"
    assert "seeds 0,1,2" in t.head and "30 epochs" in t.head
