"""The exported program against the run itself: a model trained by the engine, exported with its
standardisation, saved, and loaded in a fresh interpreter where Descent's packages cannot be
imported, reproduces the run's own test accuracy (classification) and test R² (regression) from
the raw, unstandardised test features — as ``model.pt2`` with torch alone, and as ``model.onnx``
with onnxruntime and numpy alone (torch unimportable too), matching the pt2 program's outputs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from functools import cache

import numpy as np
import pytest
import torch

from tests.worker.splits import builtin_split, make_spec
from worker.architectures import build_model
from worker.data import prepare
from worker.engine import train
from worker.export import (
    METADATA,
    ONNX_INPUT,
    ONNX_NAME,
    ONNX_OUTPUT,
    OnnxExportError,
    export_program,
    metadata,
    onnx_bytes,
    read_metadata,
    read_onnx_metadata,
    warm_onnx,
    write_onnx,
)
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


# onnxruntime and numpy alone: torch is made unimportable as well as Descent's packages
ONNX_LOAD_AND_SCORE = textwrap.dedent("""
    import json, sys
    for name in ("api", "core", "descent", "optim", "store", "worker", "torch"):
        sys.modules[name] = None  # importing any of them now fails
    import numpy as np, onnxruntime as ort, onnx
    path, data_path = sys.argv[1], sys.argv[2]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["descent.json"])
    data = np.load(data_path)
    (name,) = [i.name for i in session.get_inputs()]
    x = data["x"].astype(np.float32)
    out = session.run(None, {name: x})[0]
    y = data["y"]
    if meta["task"] == "classification":
        predicted = np.asarray(meta["labels"])[out.argmax(axis=1)]
        score = float((predicted == np.asarray([str(v) for v in y])).mean())
    else:
        score = float(1 - ((y - out) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    shapes = {}
    for batch in (1, 1000):
        rows = np.resize(x, (batch, *x.shape[1:]))  # the test rows, repeated to ``batch``
        shapes[batch] = list(session.run(None, {name: rows})[0].shape)
        assert np.allclose(session.run(None, {name: rows})[0], np.resize(data["ref"], (batch, *out.shape[1:])),
                           atol=1e-4, rtol=1e-5)
    print(json.dumps({"score": score, "meta": meta, "shapes": shapes, "max_diff": float(np.abs(out - data["ref"]).max()),
                      "input": name, "output": session.get_outputs()[0].name,
                      "batch_dim": [i.shape[0] for i in session.get_inputs()]}))
""")

# (dataset, metric, architecture): the models trained and exported, both ways
MODELS = [
    ("wine", "test/accuracy", {"name": "mlp", "depth": 1, "width": 32}),
    ("diabetes", "test/r2", {"name": "mlp", "depth": 1, "width": 32}),
    ("digits", "test/accuracy", {"name": "cnn2d", "channels": 4, "hidden": 16}),
]
IDS = [f"{dataset}-{arch['name']}" for dataset, _, arch in MODELS]


@cache
def _trained_model(dataset: str, name: str, epochs: int):
    (architecture,) = [arch for d, _, arch in MODELS if d == dataset and arch["name"] == name]
    return _trained(dataset, epochs, architecture)


def _trained(dataset: str, epochs: int, architecture=None):
    split = builtin_split(dataset)
    spec = make_spec(split, epochs=epochs, batch_size=32,
                     architecture=architecture or {"name": "mlp", "depth": 1, "width": 32})
    data = prepare(split)
    sink = ListSink()
    torch.manual_seed(0)
    result = train(spec, data, sink=sink)
    assert result.status == "succeeded"
    return split, data, result.model, sink


@pytest.mark.parametrize(("dataset", "metric", "architecture"), MODELS, ids=IDS)
def test_the_exported_program_reproduces_the_runs_test_score_with_torch_alone(dataset, metric, architecture,
                                                                              tmp_path):
    split, data, model, sink = _trained_model(dataset, architecture["name"], epochs=8)
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


@pytest.mark.parametrize(("dataset", "metric", "architecture"), MODELS, ids=IDS)
def test_the_onnx_model_reproduces_the_runs_test_score_and_the_programs_outputs_without_torch(
        dataset, metric, architecture, tmp_path):
    split, data, model, sink = _trained_model(dataset, architecture["name"], epochs=8)
    (recorded,) = [v for _, v in sink.series(metric)]
    program = export_program(model, *data.feature_scale, data.target_scale)
    meta = metadata(7, split.info, data.feature_shape)
    path = tmp_path / ONNX_NAME
    write_onnx(path, program, meta)
    # the conversion leaves the program as it was: it still saves, and gives the reference outputs
    torch.export.save(program, tmp_path / "model.pt2", extra_files={METADATA: json.dumps(meta)})
    x_test = np.asarray(split.x_test, dtype=np.float32)
    with torch.no_grad():
        ref = torch.export.load(tmp_path / "model.pt2").module()(torch.as_tensor(x_test)).numpy()
    np.savez(tmp_path / "test.npz", x=x_test, y=np.asarray(split.y_test), ref=ref)

    ran = subprocess.run([sys.executable, "-c", ONNX_LOAD_AND_SCORE, str(path), str(tmp_path / "test.npz")],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    out = json.loads(ran.stdout)
    assert out["max_diff"] < 1e-4
    assert out["score"] == pytest.approx(recorded, abs=1e-5)
    assert out["meta"] == meta == read_onnx_metadata(path)
    assert (out["input"], out["output"], out["batch_dim"]) == (ONNX_INPUT, ONNX_OUTPUT, ["batch"])
    per_row = [split.info.n_classes] if split.info.task == "classification" else []
    assert out["shapes"] == {"1": [1, *per_row], "1000": [1000, *per_row]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.pt2", "test.npz"]  # no temporary


@pytest.mark.parametrize(("name", "params", "feature_shape", "n_outputs"), [
    ("linear", {}, (13,), 3),
    ("mlp", {"depth": 2, "width": 8, "normalization": "batch", "activation": "gelu"}, (13,), 3),
    ("mlp", {"depth": 1, "width": 8, "normalization": "layer", "dropout": 0.2}, (10,), 1),
    ("cnn1d", {"channels": 4}, (10,), 1),
    ("cnn2d", {"channels": 4, "hidden": 16}, (64,), 10),
    ("resnet", {"width": 4, "blocks": 1}, (64,), 10),
    ("transformer", {"d_model": 8, "heads": 2, "layers": 1, "ff": 16}, (13,), 3),
])
def test_every_architecture_converts_to_onnx_and_matches_the_program(name, params, feature_shape, n_outputs):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = build_model(name, params, feature_shape, n_outputs).eval()
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=feature_shape), rng.uniform(0.5, 2, size=feature_shape)
    program = export_program(model, mean, std, (3.0, 2.0) if n_outputs == 1 else None)
    session = ort.InferenceSession(onnx_bytes(program, {}), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 1000):
        x = rng.normal(size=(batch, *feature_shape)).astype(np.float32)
        with torch.no_grad():
            expected = program.module()(torch.as_tensor(x)).numpy()
        np.testing.assert_allclose(session.run(None, {ONNX_INPUT: x})[0], expected, atol=1e-4, rtol=1e-5)


def test_a_model_onnx_cannot_express_raises_a_clear_error_and_writes_nothing(tmp_path):
    class Histogram(torch.nn.Module):
        def forward(self, x):
            return torch.histc(x)  # no ONNX translation for this one

    program = torch.export.export(Histogram(), (torch.randn(2, 4),))
    with pytest.raises(OnnxExportError, match="cannot be converted to ONNX.*histc"):
        write_onnx(tmp_path / ONNX_NAME, program, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::FutureWarning")  # the public exporter, not quieted here
def test_the_fast_conversion_gives_the_public_exporters_model():
    import onnx

    torch.manual_seed(0)
    program = export_program(build_model("cnn1d", {"channels": 4}, (10,), 1), np.zeros(10), np.ones(10), (1.0, 2.0))
    warm_onnx()
    fast = onnx.load_from_string(onnx_bytes(program, {"a": 1}))
    public = torch.onnx.export(program, dynamo=True, input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                               opset_version=18, verbose=False, report=False, optimize=True).model_proto
    assert [n.op_type for n in fast.graph.node] == [n.op_type for n in public.graph.node]
    assert [i.name for i in fast.graph.initializer] == [i.name for i in public.graph.initializer]
    assert [o.name for o in fast.graph.output] == [ONNX_OUTPUT] and fast.opset_import == public.opset_import
    assert {e.key: e.value for e in fast.metadata_props} == {METADATA: '{"a": 1}'}


def test_the_conversion_is_silent_in_a_workers_info_log(caplog, capfd):
    """A worker logs at INFO: the converter's own passes (onnxscript, onnx_ir) must not fill it."""
    program = export_program(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()), np.zeros(3), np.ones(3),
                             None)
    with caplog.at_level(logging.INFO):
        onnx_bytes(program, {})
    assert [r.name for r in caplog.records if r.name.startswith(("onnx", "torch.onnx"))] == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""
