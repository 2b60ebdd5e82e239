"""Test-wide configuration; service fixtures live in the conftest of the layer that needs them."""

import os

# The ONNX conversion costs every training process ~1-3 s of CPU at the end of its run; the suite
# runs hundreds of runs, so workers started by tests skip it (DESCENT_EXPORT_ONNX is inherited by
# every process they start).  The ONNX path is tested where it is the subject: the conversion in
# tests/worker/test_export.py, the worker's export in tests/worker/test_run.py (which turns it on).
os.environ.setdefault("DESCENT_EXPORT_ONNX", "0")
