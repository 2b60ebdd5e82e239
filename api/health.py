"""``GET /health``: can the api reach its database and its broker, and can the data folder take
files?  Open to everyone (load balancers and compose health checks call it); which check failed
goes to signed-in users, the reasons for a failure (hosts, paths) to admins only.

Every check runs in a thread of its own and gets :data:`CHECK_TIMEOUT_S`: a database or broker
that does not answer, or a network disk that hangs, makes the answer ``degraded`` within about
that long instead of holding the caller (a hung check's thread finishes in the background)."""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from core.settings import Settings
from store.db import read_only

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

# the data folder is short of space below 1 GiB free, or below 1% of its disk when that is less (a
# small disk): a checkpoint, the final weights or an upload may no longer fit, and a run that cannot
# store its final weights fails
MIN_FREE_BYTES = 1 << 30
MIN_FREE_FRACTION = 0.01
# the longest each check may take
CHECK_TIMEOUT_S = 1.5


class HealthPublic(BaseModel):
    """Whether the api reaches its database and its broker and the data folder can take files:
    answered with 200 when all is well, with 503 (and the same body) when anything is not."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ok", "database": True, "broker": True, "data_dir_writable": True,
         "data_dir_free_bytes": 52_613_349_376, "database_error": None, "broker_error": None, "data_dir_error": None},
        {"status": "degraded", "database": True, "broker": False, "data_dir_writable": True,
         "data_dir_free_bytes": 52_613_349_376, "database_error": None,
         "broker_error": "[Errno 111] Connection refused", "data_dir_error": None},
        {"status": "degraded", "database": True, "broker": True, "data_dir_writable": False,
         "data_dir_free_bytes": 0, "database_error": None, "broker_error": None,
         "data_dir_error": "/var/lib/descent: no space left on device (ENOSPC); 0 bytes free, below the "
                           "1073741824 a healthy data folder keeps"},
    ]})

    status: str = Field(description="`ok` when the database and the broker both answer and the data folder is "
                                    "writable with enough free space (HTTP 200), else `degraded` (HTTP 503).")
    database: bool | None = Field(None, description="Whether the database answered a `SELECT 1` within 2 s "
                                                    "(signed-in callers only).")
    broker: bool | None = Field(None, description="Whether the message broker accepted a connection within 2 s "
                                                  "(signed-in callers only).")
    data_dir_writable: bool | None = Field(
        None, description="Whether a file could be written in the data folder (`DESCENT_DATA_DIR`: uploads, "
                          "checkpoints, final weights) within 2 s (signed-in callers only).")
    data_dir_free_bytes: int | None = Field(
        None, description="Bytes free for the service on the data folder's disk; below 1 GiB (or below 1% of a "
                          "disk smaller than 100 GiB) the status is `degraded` (signed-in callers only; null when "
                          "the disk did not answer).")
    database_error: str | None = Field(None, description="Why the database check failed (at most 500 "
                                                         "characters); null when it passed.")
    broker_error: str | None = Field(None, description="Why the broker check failed (at most 500 "
                                                       "characters); null when it passed.")
    data_dir_error: str | None = Field(None, description="Why the data folder check failed: the folder, the "
                                                         "operating system's error or the free space against the "
                                                         "threshold (at most 500 characters); null when it passed.")


def check_broker(settings: Settings) -> None:
    """Raise unless the broker answers."""
    from kombu import Connection

    with Connection(settings.resolved_broker_url, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def check_database(session_factory) -> None:
    """Raise unless the database answers; read-only, so SQLite does not wait for a writer's lock."""
    with session_factory() as session:
        read_only(session).execute(text("SELECT 1"))


def _os_error(exc: OSError) -> str:
    """``no space left on device (ENOSPC)``: what a worker's checkpoint warning would say."""
    name = errno.errorcode.get(exc.errno or 0)
    what = (exc.strerror or str(exc)).lower()
    return f"{what} ({name})" if name else what


def check_data_dir(folder: Path) -> dict[str, Any]:
    """The data folder's free space and whether a file can be written there (a one-byte probe,
    removed at once).  While the folder does not exist yet, the folder it would be made in."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    floor = min(MIN_FREE_BYTES, int(MIN_FREE_FRACTION * usage.total))
    problems = []
    writable = True
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".descent-health-") as probe:
            probe.write(b"\0")
            probe.flush()  # a full disk refuses the byte, not the empty file
    except OSError as exc:
        writable = False
        problems.append(_os_error(exc))
    if usage.free < floor:
        problems.append(f"{usage.free} bytes free, below the {floor} a healthy data folder keeps")
    return {"data_dir_writable": writable, "data_dir_free_bytes": usage.free,
            "data_dir_error": f"{folder}: {'; '.join(problems)}" if problems else None}


def _bounded(checks: dict[str, Callable[[], Any]], timeout_s: float) -> dict[str, tuple[Any, BaseException | None]]:
    """Run ``checks`` side by side, each in a daemon thread; what each returned or raised, a
    ``TimeoutError`` for one still running after ``timeout_s``."""
    outcomes: dict[str, tuple[Any, BaseException | None]] = {}

    def run(name: str, check: Callable[[], Any]) -> None:
        try:
            outcomes[name] = (check(), None)
        except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
            outcomes[name] = (None, exc)

    threads = [threading.Thread(target=run, args=item, name=f"health-{item[0]}", daemon=True)
               for item in checks.items()]
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = TimeoutError(f"no answer within {timeout_s:g} s")
    done = dict(outcomes)  # a late thread may still add to outcomes
    return {name: done.get(name, (None, late)) for name in checks}


def _caller(request: Request):
    """The signed-in caller, or None (anonymous, or the database is what failed)."""
    from api.auth.principal import authenticate

    if "authorization" not in request.headers and "cookie" not in request.headers:
        return None
    try:
        with request.app.state.session_factory() as session:
            return authenticate(request, session)
    except Exception:
        return None


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def get_health(request: Request):
    """Check that the api reaches its database and its broker and that the data folder takes
    files and has room: 200 when all is well, 503 when anything is not, within a few seconds
    either way.  Anyone may ask and learns only ``ok`` or ``degraded``; a signed-in user also which
    check failed and the data folder's free space, an admin also why."""
    state = request.app.state
    outcomes = _bounded({
        "database": lambda: check_database(state.session_factory),
        "broker": state.broker_check,
        "data_dir": lambda: check_data_dir(state.settings.data_dir),
    }, CHECK_TIMEOUT_S)
    result: dict[str, Any] = {"database": True, "broker": True}
    for name in ("database", "broker"):
        if outcomes[name][1] is not None:
            result.update({name: False, f"{name}_error": str(outcomes[name][1])[:500]})
    data_dir, error = outcomes["data_dir"]
    if error is not None:
        data_dir = {"data_dir_writable": False, "data_dir_error": f"{state.settings.data_dir}: {error}"}
    result.update(data_dir, data_dir_error=(data_dir["data_dir_error"] or "")[:500] or None)
    ok = result["database"] and result["broker"] and result["data_dir_error"] is None
    if not ok:
        log.warning("health: %s", result)
    # the caller is read through the database: not when that is what failed (it may hang)
    caller = _bounded({"caller": lambda: _caller(request)}, CHECK_TIMEOUT_S)["caller"][0] if result["database"] else None
    if caller is None or caller.kind != "user":
        result = {}
    elif not caller.is_admin:  # why a check failed names hosts and paths: admins only
        for key in ("database_error", "broker_error", "data_dir_error"):
            result.pop(key, None)
    body = HealthPublic(status="ok" if ok else "degraded", **result)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ok else 503)
