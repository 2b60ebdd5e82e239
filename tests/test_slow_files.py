"""The suite's ordering rule (tests/conftest.py): the files it starts first exist and come first."""

import os

from tests.conftest import SLOW_FILES, pytest_collection_modifyitems

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_slow_file_exists():
    """A renamed or removed file would silently fall back to its collection place."""
    missing = [path for path in SLOW_FILES if not os.path.isfile(os.path.join(ROOT, path))]
    assert not missing


class _Item:
    def __init__(self, nodeid):
        self.nodeid = nodeid


def test_slow_files_move_first_in_their_order_and_the_rest_keep_theirs():
    ids = ["tests/a.py::t1", f"{SLOW_FILES[1]}::x", "tests/b.py::t2", f"{SLOW_FILES[0]}::y", "tests/a.py::t3",
           f"{SLOW_FILES[1]}::z"]
    items = [_Item(i) for i in ids]
    pytest_collection_modifyitems(None, items)
    assert [i.nodeid for i in items] == [ids[3], ids[1], ids[5], ids[0], ids[2], ids[4]]
