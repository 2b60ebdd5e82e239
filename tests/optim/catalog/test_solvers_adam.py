"""The Adam family's catalog entries: which they are, their family, and the class each names.
Defaults and bounds against the constructors are in test_solver_constructors.py."""

import optim
from optim import catalog
from optim.catalog.solvers_adam import ENTRIES

# written out, not derived from the names: the classes the service builds, from the optim package
CLASS_PATHS = {
    "adam": "optim.Adam", "adamw": "optim.AdamW", "adamax": "optim.Adamax", "nadam": "optim.NAdam",
    "radam": "optim.RAdam",
}


def test_entries_are_the_adam_family():
    assert [e.name for e in ENTRIES] == list(CLASS_PATHS)
    for entry in ENTRIES:
        assert entry.family == "adaptive"
        assert catalog.solver(entry.name) is entry
        assert entry.class_path == CLASS_PATHS[entry.name]
        assert catalog.load_class(entry) is getattr(optim, CLASS_PATHS[entry.name].removeprefix("optim."))
