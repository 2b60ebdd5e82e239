"""Test-wide configuration; service fixtures live in the conftest of the layer that needs them."""

import os

# The ONNX conversion costs every training process ~1-3 s of CPU at the end of its run; the suite
# runs hundreds of runs, so workers started by tests skip it (DESCENT_EXPORT_ONNX is inherited by
# every process they start).  The ONNX path is tested where it is the subject: the conversion in
# tests/worker/test_export.py, the worker's export in tests/worker/test_run.py (which turns it on).
os.environ.setdefault("DESCENT_EXPORT_ONNX", "0")

# Files whose tests take a minute or more in all on the 2-core machine (from `--durations`),
# longest first.  `./dev test` runs files on two processes (pytest-xdist, --dist loadfile), which
# hand out files in collection order: a long file collected late keeps one process busy after the
# other has run out of files, so these are collected first.
SLOW_FILES = (
    "tests/descent/test_study_e2e.py",
    "tests/worker/test_celery_worker.py",
    "tests/web/test_studies.py",
    "tests/descent/test_readme_tour.py",
    "tests/descent/test_limits_e2e.py",
    "tests/descent/test_up_e2e.py",
    "tests/bench/test_cli.py",
    "tests/worker/test_study_workers.py",
    "tests/drills/test_poison_run.py",
    "tests/api/test_openapi_fuzz.py",
    "tests/descent/test_generated_client.py",
)


def pytest_collection_modifyitems(config, items):
    """The files of ``SLOW_FILES`` first, in its order; every other test keeps its place."""
    rank = {path: i for i, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(SLOW_FILES)))
