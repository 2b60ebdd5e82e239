"""Parse and store an upload in a child process.

A 200 MiB CSV takes the parser 20-30 s of CPU.  In the api's own process that time holds the
GIL in long stretches, so every other request (a dashboard's GET, a worker's metrics) waits
behind it, and the parse's peak memory becomes the api's.  One child process per api process
(``spawn``: no copy of the api's threads or connections) parses, checks and writes the arrays,
and hands back only what the database records; uploads are parsed one at a time, which also
bounds the memory they take together.  A child that dies (killed for memory, say) is replaced
for the next upload and the request gets a clear error."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from core.datasets.storage import arrays_digest, save_arrays
from core.datasets.uploads import UploadError, parse_upload


@dataclass(frozen=True)
class StoredArrays:
    """What the database records of an upload whose arrays are stored."""

    digest: str
    path_name: str
    n_samples: int
    feature_shape: list[int]
    task: str
    n_classes: int | None
    class_counts: dict[str, int] | None


def parse_and_store(upload_dir: Path, filename: str, data: bytes, target: str | None, task: str | None,
                    max_bytes: int) -> StoredArrays:
    """Parse ``data`` (``core.datasets.uploads.parse_upload``'s checks) and write its arrays under
    ``upload_dir`` named by their digest; raises ``UploadError`` as the parser does."""
    parsed = parse_upload(filename, data, target, task, max_bytes=max_bytes)
    digest = arrays_digest(parsed.x, parsed.y)
    path = save_arrays(upload_dir, digest, parsed.x, parsed.y)
    return StoredArrays(digest, path.name, len(parsed.x), list(parsed.x.shape[1:]), parsed.task,
                        len(parsed.classes) if parsed.classes else None, parsed.class_counts)


def _exit_with_parent(parent: int) -> None:
    """Initializer of the parsing process: it ends when the api does, however the api ends
    (uvicorn re-raises SIGTERM after its shutdown, so the api may never run its exit hooks)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-api", daemon=True).start()


# how often the parsing process checks that the api is still there
PARENT_CHECK_S = 1.0
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_exit_with_parent, initargs=(os.getpid(),))
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def parse_and_store_in_child(upload_dir: Path, filename: str, data: bytes, target: str | None, task: str | None,
                             max_bytes: int) -> StoredArrays:
    """:func:`parse_and_store` in the api's parsing process; blocks the calling thread only."""
    pool = _executor()
    try:
        return pool.submit(parse_and_store, upload_dir, filename, data, target, task, max_bytes).result()
    except BrokenProcessPool:
        _discard(pool)
        raise UploadError("the parser stopped before it finished (most likely out of memory): upload a smaller "
                          "file, or split it") from None
