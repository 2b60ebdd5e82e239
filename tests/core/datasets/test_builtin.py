import numpy as np
import pytest
from sklearn import datasets as skd

from core.datasets import BUILTIN_DATASETS, builtin_info, load_builtin


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_builtin_is_deterministic_and_typed(name):
    x, y = load_builtin(name)
    x2, y2 = BUILTIN_DATASETS[name].load()
    np.testing.assert_array_equal(x, np.asarray(x2, dtype=np.float32))
    np.testing.assert_array_equal(y, y2)
    assert x.dtype == np.float32 and len(x) == len(y) > 0
    assert np.isfinite(x).all()
    assert y.dtype == (np.int64 if builtin_info(name).task == "classification" else np.float32)


# What each set is, written out rather than counted from the arrays builtin_info counts too:
# scikit-learn's dataset descriptions (iris, wine, breast cancer, diabetes, digits) and, for the
# generated sets, the generators' arithmetic (n_samples shared evenly among the classes).
PUBLISHED = {
    "iris": (150, (4,), {"0": 50, "1": 50, "2": 50}),
    "wine": (178, (13,), {"0": 59, "1": 71, "2": 48}),
    "breast_cancer": (569, (30,), {"0": 212, "1": 357}),  # malignant, benign
    "diabetes": (442, (10,), None),
    "digits": (1797, (64,), "about 180 in each of 10"),
    "moons": (1000, (2,), {"0": 500, "1": 500}),
    "circles": (1000, (2,), {"0": 500, "1": 500}),
    "spirals": (900, (2,), {"0": 300, "1": 300, "2": 300}),
    "blobs": (1000, (2,), {"0": 250, "1": 250, "2": 250, "3": 250}),
}


def test_every_builtin_has_its_published_facts():
    assert set(PUBLISHED) == set(BUILTIN_DATASETS)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_info_gives_the_published_size_shape_and_classes(name):
    n_samples, shape, classes = PUBLISHED[name]
    info = builtin_info(name)
    assert (info.n_samples, info.feature_shape) == (n_samples, shape)
    if classes is None:
        assert (info.task, info.n_classes, info.class_counts) == ("regression", None, None)
    elif isinstance(classes, str):
        assert info.task == "classification" and info.n_classes == 10
        assert sorted(info.class_counts) == [str(d) for d in range(10)]
        assert all(170 <= n <= 190 for n in info.class_counts.values()) and sum(info.class_counts.values()) == 1797
    else:
        assert (info.task, info.n_classes, info.class_counts) == ("classification", len(classes), classes)


@pytest.mark.parametrize(
    "name, loader", [("digits", skd.load_digits), ("iris", skd.load_iris), ("breast_cancer", skd.load_breast_cancer)]
)
def test_bundled_sets_are_sklearns(name, loader):
    x, y = load_builtin(name)
    ref = loader()
    np.testing.assert_allclose(x, ref.data.astype(np.float32))
    np.testing.assert_array_equal(y, ref.target)


def test_arrays_are_read_only_so_callers_cannot_corrupt_the_cache():
    x, _ = load_builtin("iris")
    with pytest.raises(ValueError):
        x[0, 0] = 1.0


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="digits"):
        load_builtin("mnist")
