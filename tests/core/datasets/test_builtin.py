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
    info = builtin_info(name)
    assert info.n_samples == len(x) and info.feature_shape == x.shape[1:]
    if info.task == "classification":
        assert y.dtype == np.int64
        assert sum(info.class_counts.values()) == len(y) and info.n_classes == len(np.unique(y))


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
