"""The OpenAPI schema a live ``descent up`` serves is one a code generator can rely on:
openapi-python-client turns it into a client without a single warning, and that generated client
alone uploads a csv, splits it, trains a run, reads its loss series and downloads a checkpoint
that torch loads and that is byte for byte what the hand-written ``descent.client`` downloads."""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import torch

from descent.client import Client as HandWrittenClient
from tests.descent.running import Up, free_port

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
FINISHED = ("succeeded", "failed", "cancelled")


def blobs_csv(rows: int = 60) -> bytes:
    """Three well separated classes over three numeric features, the same bytes every time."""
    lines = ["x1,x2,x3,target"]
    for i in range(rows):
        label = i % 3
        jitter = ((i * 7) % 11) / 10 - 0.5
        lines.append(f"{2 * label + jitter:.3f},{-label + jitter / 2:.3f},{(i % 5) / 5:.3f},{label}")
    return ("\n".join(lines) + "\n").encode()


def package_name(title: str) -> str:
    """The package openapi-python-client names after the schema's title ("Descent" -> descent_client)."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") + "_client"


def generate(schema: bytes, folder: Path, package: str) -> Path:
    """The client generated from ``schema`` into ``folder/package``; any warning fails it."""
    (folder / "schema.json").write_bytes(schema)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff post-hooks
    done = subprocess.run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(folder / "schema.json"),
         "--output-path", str(folder / "gen" / package), "--meta", "none", "--fail-on-warning"],
        capture_output=True, text=True, timeout=120, cwd=folder, env=env,
    )
    assert done.returncode == 0, f"openapi-python-client exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert (folder / "gen" / package / "client.py").is_file(), done.stdout + done.stderr
    return folder / "gen"


@contextmanager
def imported(parent: Path, package: str) -> Iterator[ModuleType]:
    """``package`` imported from ``parent``, then forgotten again (sys.path and sys.modules)."""
    assert package != "descent" and package not in sys.modules, package
    sys.path.insert(0, str(parent))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(parent))
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]


def test_a_client_generated_from_the_live_schema_trains_and_downloads(tmp_path):
    up = Up(tmp_path, free_port())
    try:
        up.wait_ready()
        schema = httpx.get(up.url + "/api/v1/openapi.json", timeout=10)
        assert schema.status_code == 200, schema.text
        package = package_name(schema.json()["info"]["title"])
        with imported(generate(schema.content, tmp_path, package), package) as client_package:
            run_id, checkpoint = drive(client_package, up.url, up.token)
        with HandWrittenClient(up.url, up.token) as hand_written:
            assert hand_written.checkpoint(run_id) == checkpoint
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill()


def drive(pkg: ModuleType, url: str, token: str) -> tuple[int, bytes]:
    """Upload, split, train, read metrics and download the checkpoint through the generated
    client only, with the token ``descent up`` saved; the run's id and the checkpoint's bytes."""
    package = pkg.__name__

    def operation(tag: str, name: str) -> ModuleType:
        return importlib.import_module(f"{package}.api.{tag}.{name}")

    models = importlib.import_module(f"{package}.models")
    types = importlib.import_module(f"{package}.types")
    client = pkg.AuthenticatedClient(base_url=url, token=token, timeout=httpx.Timeout(30.0),
                                     raise_on_unexpected_status=True)

    with client:
        assert hasattr(models, "DatasetUpload"), (
            "the upload body model is not named DatasetUpload; upload-like models: "
            f"{sorted(n for n in dir(models) if 'upload' in n.lower())}")
        upload = models.DatasetUpload(
            file=types.File(payload=io.BytesIO(blobs_csv()), file_name="blobs.csv", mime_type="text/csv"),
            name="generated-client-blobs", target="target",
        )
        uploaded = operation("datasets", "upload_dataset").sync_detailed(client=client, body=upload)
        assert uploaded.status_code == 201, uploaded.content
        dataset = uploaded.parsed
        assert isinstance(dataset, models.DatasetPublic), dataset
        assert dataset.n_samples == 60 and dataset.n_classes == 3, dataset

        made = operation("splits", "create_split").sync_detailed(
            client=client, body=models.SplitCreate(dataset=dataset.id, seed=0))
        assert made.status_code == 201, made.content
        split = made.parsed
        assert isinstance(split, models.SplitPublic), split

        spec = models.ExperimentSpec.from_dict({
            "name": "generated-client",
            "split_id": split.id,
            "architecture": {"name": "mlp", "depth": 1, "width": 8},
            "solver": {"name": "adam", "base_lr": 0.01},
            "training": {"epochs": 2, "batch_size": 16, "seed": 0, "device": "cpu"},
            "tags": ["generated-client"],
        })
        assert isinstance(spec.architecture, models.ArchitectureMlp), spec.architecture
        assert isinstance(spec.solver, models.SolverAdam), spec.solver
        submitted = operation("experiments", "create_experiment").sync_detailed(client=client, body=spec)
        assert submitted.status_code == 201, submitted.content
        run = submitted.parsed
        assert isinstance(run, models.ExperimentPublic), run

        get_experiment = operation("experiments", "get_experiment")
        deadline = time.monotonic() + 120
        while str(run.status) not in FINISHED and time.monotonic() < deadline:
            time.sleep(0.3)
            run = get_experiment.sync(run.id, client=client)
            assert isinstance(run, models.ExperimentPublic), run
        assert str(run.status) == "succeeded", (str(run.status), run.error)

        metrics = operation("metrics", "get_metrics").sync(run.id, client=client)
        assert isinstance(metrics, models.MetricsPublic), metrics
        assert "train/loss" in metrics.series.additional_properties, metrics.series.additional_keys
        loss = metrics.series["train/loss"]
        assert isinstance(loss, models.SeriesPublic) and loss.steps, loss
        assert len(loss.values) == len(loss.steps) and loss.higher_is_better is False, loss

        downloaded = operation("experiments", "get_checkpoint").sync_detailed(run.id, client=client)
        assert downloaded.status_code == 200, downloaded.content
        assert isinstance(downloaded.parsed, types.File), downloaded.parsed
        data = downloaded.parsed.payload.read()
        assert data and data == downloaded.content

    state = torch.load(io.BytesIO(data), weights_only=True)
    assert isinstance(state, dict) and state, type(state)
    assert all(isinstance(t, torch.Tensor) for t in state.values()), {k: type(t) for k, t in state.items()}
    assert any(tuple(t.shape) == (8, 3) for t in state.values()), {k: tuple(t.shape) for k, t in state.items()}
    return run.id, data
