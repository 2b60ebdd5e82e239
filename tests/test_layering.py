"""Dependencies point one way: api → store, optim.catalog; worker → store, optim; optim → torch.
Nothing imports api; the client imports nothing of the server.  Checked on the source's imports
(every import statement, including those inside functions)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package (or module path) -> top-level imports it must never make
FORBIDDEN = {
    "api": {"torch", "worker", "descent"},
    "store": {"torch", "api", "worker", "descent"},
    "optim": {"api", "store", "worker", "descent"},
    "worker": {"api", "descent"},
    "descent/client.py": {"api", "store", "worker", "optim", "torch"},
    "descent/client_types.py": {"api", "store", "worker", "optim", "torch"},
}
# optim.catalog and optim.factory must import without torch at module level (checked by tests/optim too)
TORCH_FREE_AT_IMPORT = ["optim/catalog", "optim/factory.py", "store", "api"]


def _python_files(rel: str) -> list[Path]:
    path = ROOT / rel
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.py"))


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_the_wrong_way(package):
    files = _python_files(package)
    assert files, f"{package} has no source files"
    offenders = {
        str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN[package]) for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package} imports what it must not: {offenders}"


@pytest.mark.parametrize("package", TORCH_FREE_AT_IMPORT)
def test_torch_only_inside_functions(package):
    offenders = [str(f.relative_to(ROOT)) for f in _python_files(package) if "torch" in _imports(f, True)]
    assert not offenders, f"torch imported at module level in {offenders}"


def test_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import torch.nn as nn\n    from worker.tasks import x\n")
    assert {"torch", "worker"} <= _imports(bad)
    assert "torch" not in _imports(bad, module_level_only=True)
