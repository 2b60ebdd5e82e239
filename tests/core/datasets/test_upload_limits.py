"""Uploads cannot exhaust the api's memory (issue 12): an npz may hold only ``x.npy`` and ``y.npy``,
is refused from its zip directory and .npy headers before anything large is decompressed, and a
csv is parsed row by row into float32 arrays.  Memory is measured as the growth of a child
process's peak RSS (``VmHWM``, else ``ru_maxrss``) across the parse, the upload's bytes already
in memory."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.datasets.uploads import UploadError, UploadTooLarge, parse_upload

MB = 1024 * 1024
BOMB_BYTES = 200 * MB  # of zeros, deflated to ~200 KB

_CHILD = """
import json, resource, sys
from pathlib import Path
from core.datasets.uploads import parse_upload

def peak_kb():
    # this process's own peak (VmHWM): ru_maxrss starts from the parent's peak when it forks and execs
    try:
        return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

path, target, task, max_bytes = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None, sys.argv[4]
data = Path(path).read_bytes()
try:  # Linux: the peak back to the present, so a transient of the read above does not hide the parse's
    Path("/proc/self/clear_refs").write_text("5")
except OSError:
    pass
before = peak_kb()
result = {}
try:
    parsed = parse_upload(Path(path).name, data, target, task, max_bytes=int(max_bytes) if max_bytes else None)
    result = {"shape": list(parsed.x.shape), "task": parsed.task, "classes": parsed.classes}
except Exception as exc:
    result = {"error": type(exc).__name__, "message": str(exc)}
result["growth_kb"] = peak_kb() - before
print(json.dumps(result))
"""


def _parse_in_child(path: Path, target: str | None = None, task: str | None = None,
                    max_bytes: int | None = None) -> dict:
    """Parse ``path`` in a fresh interpreter; its peak RSS growth across the parse in MB."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), target or "", task or "", str(max_bytes or "")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    result["growth_mb"] = result.pop("growth_kb") / 1024
    return result


def _zip(members: dict[str, bytes | np.ndarray], compression: int = zipfile.ZIP_STORED) -> bytes:
    """An npz by hand: each member an .npy written with ``write_array`` (or raw bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression, compresslevel=1) as archive:
        for name, content in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                if isinstance(content, bytes):
                    member.write(content)
                else:
                    np.lib.format.write_array(member, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """Real npz files whose x is 200 MB of zeros deflated to a few hundred KB: once as ``x.npy``,
    once as plain ``x`` / ``y`` (which ``np.load`` reads as well)."""
    folder = tmp_path_factory.mktemp("bombs")
    zeros = np.broadcast_to(np.float64(0), (BOMB_BYTES // 8 // 10, 10))  # written in chunks: never held whole
    y = np.arange(len(zeros)) % 2
    paths = {}
    for names in (("x.npy", "y.npy"), ("x", "y")):
        path = folder / f"bomb-{names[0]}.npz"
        path.write_bytes(_zip(dict(zip(names, (zeros, y))), zipfile.ZIP_DEFLATED))
        paths[names[0]] = path
    return paths


@pytest.mark.parametrize("member, max_bytes, error, message", [
    # the declared sizes add up past the limit: refused from the zip directory
    ("x.npy", 100 * MB, UploadTooLarge, r"decompressed, more than the 104857600 allowed"),
    # under the limit, but 1000:1: refused as a compression bomb
    ("x.npy", 1024 * MB, UploadError, r"x.npy expands \d+:1 when decompressed.*more than the 100:1 allowed"),
    ("x.npy", None, UploadError, r"more than the 100:1 allowed"),
    # members np.load would also read as x and y
    ("x", 1024 * MB, UploadError, r"only the members \['x.npy', 'y.npy'\]; it has \['x', 'y'\]"),
])
def test_an_npz_bomb_is_refused_without_allocating(bombs, member, max_bytes, error, message):
    path = bombs[member]
    assert path.stat().st_size < 2 * MB
    result = _parse_in_child(path, max_bytes=max_bytes)
    assert result.get("error") == error.__name__, result
    assert re.search(message, result["message"]), result["message"]
    assert result["growth_mb"] < 50, result


@pytest.mark.parametrize("members, error, message", [
    ({"x.npy": np.ones((4, 2)), "y.npy": np.arange(4) % 2, "z.npy": np.ones(3)}, UploadError,
     r"only the members \['x.npy', 'y.npy'\]; it has \['x.npy', 'y.npy', 'z.npy'\]: \['z.npy'\] is not allowed"),
    ({"x.npy": np.ones((4, 2)), "y.npy": np.arange(4) % 2, "notes.txt": b"hi"}, UploadError, r"\['notes.txt'\]"),
    ({"x.npy": np.ones((4, 2)), "y.npy": np.arange(4) % 2, "a/x.npy": np.ones(3)}, UploadError, r"\['a/x.npy'\]"),
    ({"x.npy": np.ones((4, 2))}, UploadError, r"lacks array\(s\) \['y'\]; it has \['x'\]"),
    ({"x.npy": np.array([[object()]] * 2), "y.npy": np.arange(2)}, UploadError, r"x.npy holds Python objects"),
    ({"x.npy": b"not an npy", "y.npy": np.arange(2)}, UploadError, r"readable"),
])
def test_npz_members_other_than_x_and_y_are_refused_naming_them(members, error, message):
    with pytest.raises(error, match=message) as caught:
        parse_upload("a.npz", _zip(members), max_bytes=MB)
    assert caught.value.field == "file"


def _header_claiming(shape: tuple[int, ...]) -> bytes:
    """An .npy of a few bytes whose header declares ``shape`` float64."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


@pytest.mark.parametrize("max_bytes, error, message", [
    (MB, UploadTooLarge, r"x.npy declares shape \(1099511627776, 4\) of float64: 35184372088832 bytes, more than the 1048576 allowed"),
    (None, UploadError, r"x.npy declares 35184372088832 bytes of data but the member holds \d+"),
])
def test_an_npy_header_claiming_more_than_it_holds_is_refused_before_reading(max_bytes, error, message):
    data = _zip({"x.npy": _header_claiming((2**40, 4)), "y.npy": np.arange(2)})
    with pytest.raises(error, match=message):
        parse_upload("a.npz", data, max_bytes=max_bytes)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_a_valid_npz_still_loads(save):
    x, y = np.random.default_rng(0).normal(size=(50, 3, 4)), np.arange(50) % 3
    buffer = io.BytesIO()
    save(buffer, x=x, y=y)
    parsed = parse_upload("a.npz", buffer.getvalue(), max_bytes=MB)
    assert parsed.x.dtype == np.float32 and np.array_equal(parsed.x, x.astype(np.float32))
    assert parsed.y.tolist() == y.tolist() and parsed.classes == ["0", "1", "2"]


def test_a_small_npz_may_compress_well():
    """The ratio limit spares members under 1 MiB: sorted labels compress far past 100:1."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((20_000, 2)), y=np.repeat([0, 1], 10_000))
    assert parse_upload("a.npz", buffer.getvalue(), max_bytes=MB).class_counts == {"0": 10_000, "1": 10_000}


@pytest.fixture(scope="module")
def big_csvs(tmp_path_factory) -> dict[str, Path]:
    """~20 MB each: 200k rows of 10 numeric features and a numeric or a string target."""
    folder = tmp_path_factory.mktemp("csv")
    rows = 200_000
    x = np.random.default_rng(0).random((rows, 10))
    features = "\n".join(",".join(f"{v:.6f}" for v in row) for row in x.tolist()).split("\n")
    header = ",".join(f"f{i}" for i in range(10))
    kinds = ("cat", "dog", "fish")
    paths = {}
    for name, targets in (("numeric", [f"{v:.5f}" for v in x[:, 0] * 3]), ("strings", [kinds[i % 3] for i in range(rows)])):
        body = "\n".join(f"{f},{t}" for f, t in zip(features, targets))
        paths[name] = folder / f"{name}.csv"
        paths[name].write_text(f"{header},target\n{body}\n")
    return paths


@pytest.mark.parametrize("kind, task, classes", [
    ("numeric", "regression", None),
    ("strings", "classification", ["cat", "dog", "fish"]),
])
def test_a_20mb_csv_parses_within_a_small_multiple_of_its_size(big_csvs, kind, task, classes):
    path = big_csvs[kind]
    size_mb = path.stat().st_size / MB
    assert 15 < size_mb < 30
    result = _parse_in_child(path, target="target")
    assert result.get("shape") == [200_000, 10] and result["task"] == task and result["classes"] == classes, result
    assert result["growth_mb"] < 4 * size_mb, result
