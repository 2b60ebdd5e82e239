from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from store.repositories.queue import WaitCause


class QueueDepthPublic(BaseModel):
    """One worker queue, across every project: experiments on `gpu` and `cpu`, the optimizer lab's
    races and landscapes on `lab`."""

    queued: int = Field(description="Experiments (on `lab`: races and landscapes) waiting on it.")
    running: int = Field(description="Experiments training on it (on `lab`: races and landscapes computing).")
    workers: int = Field(description="Alive workers serving it (seen within `DESCENT_STALE_HEARTBEAT_S`).")
    idle_workers: int = Field(description="Alive workers serving it that train nothing now; on `lab`, where a job "
                                          "does not record its worker, the workers less its running jobs (at "
                                          "least 0).")
    oldest_queued_s: float | None = Field(description="Seconds its oldest queued experiment (on `lab`: race or "
                                                      "landscape) has waited; null when none waits.")


class WaitingPublic(BaseModel):
    """A queued experiment of the caller's projects and why it waits."""

    id: int = Field(description="The experiment's id.")
    name: str = Field(description="Its name.")
    project_id: int = Field(description="Its project.")
    queue: str = Field(description="The worker queue it waits on: `gpu` or `cpu`.")
    position: int = Field(description="1 for the next to start: its place in its queue among the queued "
                                      "experiments of every project, oldest first.")
    waited_s: float = Field(description="Seconds since it was submitted.")
    cause: WaitCause
    reason: str = Field(description="The cause in a sentence, with what to do about it.")


class QueuePublic(BaseModel):
    """Every worker queue's depth and the caller's waiting experiments, from the database alone."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "queues": {
            "gpu": {"queued": 2, "running": 1, "workers": 1, "idle_workers": 0, "oldest_queued_s": 95.2},
            "cpu": {"queued": 0, "running": 0, "workers": 0, "idle_workers": 0, "oldest_queued_s": None},
            "lab": {"queued": 1, "running": 1, "workers": 1, "idle_workers": 0, "oldest_queued_s": 0.4},
        },
        "waiting": [{"id": 12, "name": "resnet-adamw", "project_id": 1, "queue": "gpu", "position": 1,
                     "waited_s": 95.2, "cause": "busy",
                     "reason": "all 1 workers on the 'gpu' queue are busy; 0 runs ahead of it: it starts when "
                               "one finishes (start more: `descent worker --queue gpu`)"}],
    }]})

    queues: dict[str, QueueDepthPublic] = Field(description="Each queue by name: `gpu` and `cpu` (trainings), `lab` "
                                                            "(the optimizer lab's races and landscapes).")
    waiting: list[WaitingPublic] = Field(description="The queued experiments of the caller's projects, by queue "
                                                     "then position (at most `limit`); lab jobs are not listed, "
                                                     "only counted on `lab`.")
