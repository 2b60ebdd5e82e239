"""``scripts/gpu-check``: one line and exit 0 where there is no CUDA; where there is, a report
with the date, the device and every part (run by ``pytest -m gpu`` on a GPU machine)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-check"


def _run(tmp_path, **env):
    report = tmp_path / "gpu-check.md"
    return report, subprocess.run(
        [str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=480,
        env={**os.environ, "PYTHON": sys.executable, "GPU_CHECK_OUT": str(report), **env},
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_skips_everything_in_one_line_and_succeeds(tmp_path):
    report, done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "gpu-check: no CUDA device here — skipped the CUDA tests and benchmarks "
        "(run it on a machine with an NVIDIA GPU)"
    ]
    assert done.stderr == "" and not report.exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; run where a GPU is lent")
def test_on_cuda_it_reports_the_device_and_every_part(tmp_path):
    """The quick variant: every benchmark's --quick run on cuda, the gpu tests listed (this test
    is one of them, so they are not run again from inside it)."""
    report, done = _run(tmp_path, GPU_CHECK_QUICK="1")
    text = report.read_text()
    assert done.returncode == 0, text
    assert torch.cuda.get_device_name(0) in text.splitlines()[2]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text.splitlines()[2])
    parts = re.findall(r"^## (.+): passed in \d+ s$", text, re.M)
    assert parts == ["gpu-marked tests", "descent bench optim --device cuda", "descent bench solvers --device cuda",
                     "descent bench engine --device cuda"]
    assert "device cuda" in text and "engine vs hand loop on cuda" in text
    assert text in done.stdout
