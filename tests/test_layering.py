"""Dependencies point one way: api → core, store, optim.catalog; worker → core, store, optim;
optim → torch; store → core.  Nothing imports api; the client imports nothing of the server;
only the ``descent bench`` command imports the benchmarks (``bench``).

A boundary is what an import loads, not what a file's first lines say: each package (every
module in it) is imported in a fresh interpreter and ``sys.modules`` is read.  A second check
reads every import statement, including those inside functions, which run only later."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SERVER = {"api", "store", "worker", "optim", "torch", "sqlalchemy", "fastapi", "celery"}
# what to import (packages are walked: every submodule) -> top-level modules that must not load
LOADED_RULES = {
    "core": {"torch", "sqlalchemy", "fastapi", "celery", "api", "store", "worker"},
    "api": {"torch", "worker", "bench"},
    "store": {"torch", "api", "worker", "fastapi", "celery"},
    "worker.engine": {"sqlalchemy", "celery", "fastapi", "httpx", "api", "store"},
    "worker": {"api", "fastapi"},
    "optim": {"store", "api", "worker", "sqlalchemy", "fastapi", "celery", "core"},
    "optim.catalog": {"torch", "store", "api", "worker", "sqlalchemy"},
    "optim.factory": {"torch", "store", "api", "worker", "sqlalchemy"},
    "descent.client": SERVER,
    "descent.client_types": SERVER,
    "descent.credentials": SERVER,
    "descent.progress": SERVER,
}

# the same rules on the source: every import statement, also those inside functions
STATEMENT_RULES = {
    "core": {"torch", "sqlalchemy", "fastapi", "api", "store", "worker", "descent"},
    "api": {"torch", "worker", "descent", "bench"},
    "store": {"torch", "api", "worker", "descent", "fastapi", "celery"},
    "worker/engine": {"sqlalchemy", "celery", "fastapi", "httpx", "api", "store", "descent"},
    "worker": {"api", "descent"},
    "optim": {"api", "store", "worker", "descent", "core"},
    "descent/client.py": SERVER,
    "descent/client_types.py": SERVER,
    "descent/credentials.py": SERVER,
    "descent/progress.py": SERVER,
}

# a submodule that needs one of these is skipped where it is not installed: triton is a dev
# dependency on x86_64 Linux only (optim._fused_triton imports it; nothing else imports that module
# unless a CUDA step needs it)
OPTIONAL = ("triton",)

_PROBE = """
import importlib, json, pkgutil, sys
target, optional = sys.argv[1], sys.argv[2].split(",")
module = importlib.import_module(target)
if hasattr(module, "__path__"):
    for info in pkgutil.walk_packages(module.__path__, target + "."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as missing:
            if (missing.name or "").split(".")[0] not in optional:
                raise
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_by(target: str) -> set[str]:
    """Top-level modules in ``sys.modules`` after importing ``target`` and all its submodules."""
    done = subprocess.run([sys.executable, "-c", _PROBE, target, ",".join(OPTIONAL)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"importing {target} failed:\n{done.stderr[-3000:]}"
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("target", sorted(LOADED_RULES))
def test_importing_loads_nothing_it_must_not(target):
    wrong = loaded_by(target) & LOADED_RULES[target]
    assert not wrong, f"importing {target} (and its submodules) loads {sorted(wrong)}"


def _python_files(rel: str) -> list[Path]:
    path = ROOT / rel
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every absolute import statement in ``path``, wherever it stands
    (``from a import b`` gives ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def imported_names(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("package", sorted(STATEMENT_RULES))
def test_no_import_statement_points_the_wrong_way(package):
    files = _python_files(package)
    assert files, f"{package} has no source files"
    offenders = {str(f.relative_to(ROOT)): sorted(imported_names(f) & STATEMENT_RULES[package]) for f in files}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package} imports what it must not: {offenders}"


def test_core_reads_only_the_torch_free_catalog_of_optim():
    allowed = ("optim.catalog", "optim.factory")
    uses = {f"{f.relative_to(ROOT)}: {name}" for f in _python_files("core") for name in imported_modules(f)
            if name.split(".")[0] == "optim" and not name.startswith(allowed)}
    assert not uses, f"core may import only {allowed} of optim: {sorted(uses)}"


def test_only_the_bench_command_imports_the_benchmarks():
    allowed = {ROOT / "descent" / "commands" / "bench.py"}
    files = [f for package in ("api", "core", "store", "worker", "optim", "descent", "web", "migrations")
             for f in _python_files(package) if f not in allowed]
    offenders = sorted(str(f.relative_to(ROOT)) for f in files if "bench" in imported_names(f))
    assert not offenders, f"only descent/commands/bench.py may import bench: {offenders}"


def test_the_probe_sees_a_module_loaded_through_another(tmp_path, monkeypatch):
    """The check catches an indirect load (a → b → json) that reading a's imports would miss."""
    pkg = tmp_path / "layerprobe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from layerprobe import b\n")
    (pkg / "b.py").write_text("import wave\n")
    done = subprocess.run([sys.executable, "-c", _PROBE, "layerprobe", ""], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert "wave" in json.loads(done.stdout.strip().splitlines()[-1])
    assert "wave" not in imported_names(pkg / "a.py")


def test_the_probe_skips_a_module_whose_optional_dependency_is_missing_and_nothing_else(tmp_path):
    pkg = tmp_path / "layerprobe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "gpu.py").write_text("import descent_no_such_optional\n")
    (pkg / "plain.py").write_text("import wave\n")
    runs = {
        optional: subprocess.run([sys.executable, "-c", _PROBE, "layerprobe", optional], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=60)
        for optional in ("descent_no_such_optional", "")
    }
    assert "wave" in json.loads(runs["descent_no_such_optional"].stdout.strip().splitlines()[-1])
    assert runs[""].returncode != 0 and "descent_no_such_optional" in runs[""].stderr
