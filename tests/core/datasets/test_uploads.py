"""Upload parsing: each bad file is rejected with a message naming its problem."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core.datasets.uploads import UploadError, parse_upload


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("filename, data, target, message", [
    ("a.csv", b"", "y", "empty"),
    ("a.csv", b"a,b,y\n", "y", "no rows"),
    ("a.csv", b"a,b,y\n1,2,0\n3,4\n", "y", "ragged"),
    ("a.csv", b"a,b,y\n1,2,0\n3,nan,1\n", "y", "NaN"),
    ("a.csv", b"a,b,y\n1,2,0\n3,inf,1\n", "y", "NaN or infinite"),
    ("a.csv", b"a,b,label\n1,2,0\n3,4,1\n", "y", "'y' is not in the header"),
    ("a.csv", b"a,b,y\n1,2,0\n3,4,0\n", "y", "one class"),
    ("a.csv", b"a,b,y\n1,x,0\n3,4,1\n", "y", "numbers"),
    ("a.csv", b"a,y\n1,0\n", None, "target"),
    # a field past csv.field_size_limit() (131072 characters): csv.Error, not a crash
    ("a.csv", b"a,y\n1,0\n\"" + b"1" * 140_000 + b"\",1\n", "y", r"line 3: field larger than field limit"),
    ("a.csv", b"a" * 140_000 + b",y\n1,0\n", "y", r"cannot be read at line 1: field larger than field limit"),
    ("a.csv", b"a,y\n1,0\n2,1\xff\n", "y", r"not UTF-8 text \(invalid start byte at byte 11\)"),
    ("a.csv", b"y\n1\n2\n", "y", "no feature columns"),
    ("a.npz", _npz(x=np.ones((3, 2))), None, "lacks"),
    ("a.npz", _npz(x=np.ones((3, 2)), y=np.array([0, 1])), None, "rows"),
    ("a.npz", _npz(x=np.ones((3, 2)), y=np.ones((3, 1))), None, r"shape \(N,\)"),
    ("a.npz", _npz(x=np.full((2, 2), np.nan), y=np.array([0, 1])), None, "NaN"),
    ("a.npz", b"not a zip", None, "readable"),
    ("a.txt", b"1,2", None, "unsupported"),
])
def test_bad_uploads_are_rejected_naming_the_problem(filename, data, target, message):
    with pytest.raises(UploadError, match=message):
        parse_upload(filename, data, target)


def test_csv_with_string_labels_becomes_classes_in_sorted_order():
    parsed = parse_upload("a.csv", b"f1,f2,kind\n1,2,dog\n3,4,cat\n5,6,dog\n", "kind")
    assert parsed.task == "classification" and parsed.classes == ["cat", "dog"]
    assert parsed.y.tolist() == [1, 0, 1] and parsed.x.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert parsed.class_counts == {"cat": 1, "dog": 2}


@pytest.mark.parametrize("y, task", [
    (np.array([0.5, 1.25, 2.0, 3.5]), "regression"),
    (np.array([0, 1, 1, 2]), "classification"),
    (np.array([0.0, 1.0, 1.0, 0.0]), "classification"),
])
def test_npz_task_is_inferred_from_labels(y, task):
    parsed = parse_upload("a.npz", _npz(x=np.arange(8.0).reshape(4, 2), y=y))
    assert parsed.task == task and parsed.x.shape == (4, 2)


def test_npz_keeps_sample_shape():
    parsed = parse_upload("a.npz", _npz(x=np.zeros((6, 3, 8, 8)), y=np.array([0, 1] * 3)))
    assert parsed.x.shape == (6, 3, 8, 8) and parsed.x.dtype == np.float32


@pytest.mark.parametrize("labels, task, classes, y", [
    # a label that is not a number, after some that are: every label is read as the text it is
    ("1 1.0 dog 1", None, ["1", "1.0", "dog"], [0, 1, 2, 0]),
    ("0.5 1.5 2.5 0.5", None, None, [0.5, 1.5, 2.5, 0.5]),
    ("0.5 1.5 2.5 0.5", "classification", ["0.5", "1.5", "2.5"], [0, 1, 2, 0]),
])
def test_csv_labels_keep_their_text_or_value(labels, task, classes, y):
    rows = "".join(f"{i},{label}\n" for i, label in enumerate(labels.split()))
    parsed = parse_upload("a.csv", f"a,y\n{rows}".encode(), "y", task)
    assert parsed.classes == classes and parsed.y.tolist() == y


def test_csv_string_labels_cannot_be_regression_targets():
    with pytest.raises(UploadError, match="regression needs numeric labels") as caught:
        parse_upload("a.csv", b"a,y\n1,x\n2,z\n", "y", "regression")
    assert caught.value.field == "target"
