"""Datasets as numpy arrays: the built-ins (bundled with scikit-learn or generated, never
downloaded) and their metadata.  Uploaded datasets are parsed and stored by ``core.datasets.uploads``."""

from core.datasets.builtin import BUILTIN_DATASETS, DatasetInfo, builtin_info, load_builtin

__all__ = ["BUILTIN_DATASETS", "DatasetInfo", "builtin_info", "load_builtin"]
