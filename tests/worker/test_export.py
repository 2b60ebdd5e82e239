"""The exported program against the run itself: a model trained by the engine, exported with its
standardisation, saved, and loaded in a fresh interpreter where Descent's packages cannot be
imported, reproduces the run's own test accuracy (classification) and test R² (regression) from
the raw, unstandardised test features."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.export import METADATA, export_program, metadata, read_metadata
from worker.sink import ListSink

# run in a fresh interpreter: Descent's packages are made unimportable, so the program needs torch alone
LOAD_AND_SCORE = textwrap.dedent("""
    import json, sys
    for name in ("api", "core", "descent", "optim", "store", "worker"):
        sys.modules[name] = None  # importing any of them now fails
    import numpy as np, torch
    path, data_path = sys.argv[1], sys.argv[2]
    extra = {"descent.json": ""}
    program = torch.export.load(path, extra_files=extra)
    meta = json.loads(extra["descent.json"])
    data = np.load(data_path)
    with torch.no_grad():
        out = program.module()(torch.as_tensor(data["x"], dtype=torch.float32)).numpy()
    y = data["y"]
    if meta["task"] == "classification":
        score = float((out.argmax(axis=1) == y).mean())
    else:
        score = float(1 - ((y - out) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    one = program.module()(torch.as_tensor(data["x"][:1], dtype=torch.float32))
    print(json.dumps({"score": score, "meta": meta, "one": list(one.shape)}))
""")


def _trained(dataset: str, epochs: int):
    split = builtin_split(dataset)
    spec = make_spec(split, epochs=epochs, batch_size=32, architecture={"name": "mlp", "depth": 1, "width": 32})
    data = prepare(split)
    sink = ListSink()
    torch.manual_seed(0)
    result = train(spec, data, sink=sink)
    assert result.status == "succeeded"
    return split, data, result.model, sink


@pytest.mark.parametrize(("dataset", "metric"), [("wine", "test/accuracy"), ("diabetes", "test/r2")])
def test_the_exported_program_reproduces_the_runs_test_score_with_torch_alone(dataset, metric, tmp_path):
    split, data, model, sink = _trained(dataset, epochs=8)
    (recorded,) = [v for _, v in sink.series(metric)]
    program = export_program(model, *data.feature_scale, data.target_scale)
    meta = metadata(7, split.info, data.feature_shape)
    path = tmp_path / "model.pt2"
    torch.export.save(program, path, extra_files={METADATA: json.dumps(meta)})
    np.savez(tmp_path / "test.npz", x=np.asarray(split.x_test, dtype=np.float32), y=np.asarray(split.y_test))

    ran = subprocess.run([sys.executable, "-c", LOAD_AND_SCORE, str(path), str(tmp_path / "test.npz")],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    out = json.loads(ran.stdout)
    assert out["score"] == pytest.approx(recorded, abs=1e-5)
    assert out["meta"] == meta == read_metadata(path)
    expected_one = [1, split.info.n_classes] if split.info.task == "classification" else [1]
    assert out["one"] == expected_one  # any batch size, one sample too


def test_metadata_names_the_labels_in_output_order_and_the_input():
    split = builtin_split("wine")
    meta = metadata(3, split.info, (13,))
    assert meta["labels"] == ["0", "1", "2"] and meta["task"] == "classification"
    assert meta["feature_shape"] == [13] and "unstandardised" in meta["input"]
    regression = metadata(3, builtin_split("diabetes").info, (10,))
    assert regression["labels"] is None and "own units" in regression["output"]
