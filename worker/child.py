"""The training process: ``python -m worker.child``, started by ``worker.supervisor`` for one
claimed attempt.  It reads its job (a JSON object: experiment id, attempt, stored spec, split id,
the claim's ``time.monotonic`` reading and the worker's settings) from stdin once its imports are done (so a spare started ahead of time
waits ready), trains with
:func:`worker.run.train_claimed`, and writes the outcome as one JSON line,
``{"status": ..., "error": ...}``, to the stdout it was given; everything else it prints goes to
stderr (the worker's log).  It records metrics, progress and checkpoints itself; the outcome it
leaves to the supervisor.

It ends itself when its supervisor is gone (the worker killed): an orphan would train on with no
one to record its outcome."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

# how often the training process checks that its supervisor is still alive
PARENT_CHECK_S = 0.5
# its exit status when it ends itself because the supervisor is gone
ORPHANED_EXIT = 70


# its name once it has a job (``ps``, ``top`` and /proc/<pid>/comm show it): ``run-<experiment id>``
PROCESS_NAME_PREFIX = "run-"


def _name_process(name: str) -> None:
    try:
        Path("/proc/self/comm").write_text(name[:15])
    except OSError:  # not Linux: the name is only a convenience
        pass


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            os._exit(ORPHANED_EXIT)


def main() -> int:
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-supervisor", daemon=True).start()
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (libraries, warnings) go to the log, never into the outcome
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(asctime)s: %(levelname)s/training %(process)d] %(name)s: %(message)s")
    # the imports (torch: ~3 s) and the export machinery's warm-up come before the job, so a spare started ahead starts its run at once
    from core.settings import Settings
    from worker import export
    from worker.run import Runtime, train_claimed

    export.warm()
    from worker.engine import fused_default

    fused_default.kernel_ready()  # loads the fused optimizer kernel when it is built (never compiles): 0.1 s off the run

    text = sys.stdin.read()
    if not text.strip():
        return 0  # a spare whose worker ended without needing it
    job = json.loads(text)
    _name_process(f"{PROCESS_NAME_PREFIX}{job['experiment_id']}")
    settings = Settings(**job["settings"])
    runtime = Runtime.from_settings(settings)
    runtime.host = job["host"]
    status, error = train_claimed(job["experiment_id"], job["attempt"], job["spec"], job["split_id"], runtime,
                                  job["claimed_at"], cancel_poll_s=job["cancel_poll_s"])
    result.write(json.dumps({"status": status, "error": error}) + "\n")
    result.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
