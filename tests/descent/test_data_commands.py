"""``descent datasets`` and ``descent splits`` against a live api: upload a CSV, find it by name,
split it by name, show both, and delete them in the order the api allows (a used dataset: the
api's 409 names the split, and the command says so)."""

from __future__ import annotations

import argparse
import json

import pytest

from descent import cli
from descent.commands.data import fractions
from tests.descent.test_client import served  # noqa: F401 - the live api fixture

CSV = "a,b,kind\n" + "".join(f"{i},{i % 7},{'xy'[i % 3 == 0]}\n" for i in range(60))


def _run(served, capsys, *argv: str) -> tuple[int, str, str]:  # noqa: F811
    url, _, _, token = served
    code = cli.main([*argv, "--url", url, "--token", token])
    out, err = capsys.readouterr()
    return code, out, err


def test_upload_split_show_and_remove_by_name(served, capsys, tmp_path):  # noqa: F811
    path = tmp_path / "petals.csv"
    path.write_text(CSV)
    code, out, _ = _run(served, capsys, "datasets", "upload", str(path), "--target", "kind")
    assert code == 0
    assert out.splitlines() == [
        "uploaded petals (upload 1 in project 1): 60 samples of 2 features, classification, 2 classes",
        "split it: descent splits create petals",
    ]
    code, out, _ = _run(served, capsys, "datasets", "show", "petals", "--json")
    shown = json.loads(out)
    assert (shown["id"], shown["class_counts"]) == (1, {"x": 40, "y": 20})
    code, out, _ = _run(served, capsys, "datasets", "ls")
    assert "iris (built-in): 150 samples of 4 features, classification, 3 classes" in out.splitlines()
    assert out.splitlines()[-1].startswith("petals (upload 1 in project 1)")

    code, out, _ = _run(served, capsys, "splits", "create", "petals", "--strategy", "stratified", "--fractions", "0.5,0.25,0.25", "--seed", "3")
    assert code == 0
    first = out.splitlines()[0]
    split_id = int(first.split()[1])
    assert first == f"split {split_id} of 1 (stratified 0.5/0.25/0.25, seed 3, project 1): train 30, val 15, test 15"
    code, out, _ = _run(served, capsys, "splits", "show", str(split_id))
    assert out.splitlines()[1:] == ["  train: class x 20, class y 10", "  val: class x 10, class y 5",
                                    "  test: class x 10, class y 5"]

    code, _, err = _run(served, capsys, "datasets", "rm", "petals")
    assert code == 1 and f"{split_id}" in err  # the api names the split that uses it
    assert _run(served, capsys, "splits", "rm", str(split_id))[:2] == (0, f"deleted split {split_id}\n")
    assert _run(served, capsys, "datasets", "rm", "petals")[:2] == (0, "deleted dataset 1 (petals)\n")
    code, _, err = _run(served, capsys, "datasets", "show", "petals")
    assert code == 1 and "no dataset named petals" in err


@pytest.mark.parametrize(("text", "expected"), [
    ("0.7,0.2,0.1", {"train": 0.7, "val": 0.2, "test": 0.1}),
    ("1,0,0", {"train": 1.0, "val": 0.0, "test": 0.0}),
])
def test_fractions_are_train_val_test(text, expected):
    assert fractions(text) == expected


@pytest.mark.parametrize("text", ["0.7,0.3", "a,b,c", "0.5,0.2,0.2,0.1"])
def test_bad_fractions_say_what_is_expected(text):
    with pytest.raises(argparse.ArgumentTypeError, match="three numbers|train,val,test"):
        fractions(text)
