"""One ``Settings`` for every process, from ``DESCENT_*`` environment variables (and ``.env``).

The embedded default needs no server: an SQLite file for the data and kombu's SQLAlchemy
transport over a second SQLite file for the broker, both under the data folder (the README says
why not kombu's faster filesystem transport).  Production sets ``DESCENT_DATABASE_URL``
(PostgreSQL through psycopg 3) and ``DESCENT_BROKER_URL`` (Redis).  Bad values fail at start-up, naming the variable."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESCENT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("descent-data"), description="Uploads, checkpoints, the SQLite file, the local broker.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir.")
    broker_url: str | None = Field(None, description="Celery broker; default: SQLite-backed transport in data_dir.")
    broker_poll_interval: float = Field(0.1, gt=0, le=10, description="Seconds between polls of a server-free broker.")
    redis_visibility_timeout: int = Field(
        900, ge=5,
        description="Seconds before Redis hands out again a message its worker took and never acknowledged (the "
                    "worker died, or the run is still training); the next delivery finds the run finished or alive "
                    "and drops it, so this bounds how long a dead worker's message lingers.",
    )
    max_upload_bytes: int = Field(200 * 1024 * 1024, ge=1, description="Largest dataset upload accepted (413 above).")
    max_request_bytes: int = Field(
        10 * 1024 * 1024, ge=1024,
        description="Largest body of any other request (413 above); a batch of 100,000 metric points is ~10 MB.",
    )
    max_compare_experiments: int = Field(50, ge=1, description="Most experiments one /compare request may name.")
    max_metric_names: int = Field(200, ge=1, description="Most distinct metric names one experiment may record.")
    requeue_after_s: float = Field(60.0, gt=0, description="A queued experiment older than this is re-sent.")
    stale_heartbeat_s: float = Field(
        10.0, gt=0,
        description="A running experiment silent this long may be taken over (its attempt beats every 0.25 s, "
        "also while its data loads); workers check for silent runs every fifth of it.")
    heartbeat_s: float = Field(5.0, gt=0, description="How often a worker reports it is alive.")
    max_attempts: int = Field(
        2, ge=1, le=100,
        description="Times a run's training process may die (killed by the operating system, most often for memory, "
                    "or crashed) before the run fails with the reason instead of being tried again.")
    export_onnx: bool = Field(
        True, description="Also export each succeeded run's model as ONNX (GET /experiments/{id}/model?format=onnx); "
                          "the conversion costs a training process ~1-3 s of CPU at the end of every run.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host names the api answers to (the Host header), comma-separated; others get 400. "
                    "Default: the loopback names. Set it to the names clients use when serving a network.",
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 90, description="How long a dashboard sign-in lasts.")

    # -- budgets: what one experiment may ask of the queue it targets (422 at submission above) ----
    cpu_max_params: int = Field(50_000_000, ge=1, description="Most model parameters an experiment on the cpu queue may have.")
    gpu_max_params: int = Field(1_000_000_000, ge=1, description="Most model parameters an experiment on the gpu queue may have.")
    cpu_max_memory_mb: int = Field(
        4096, ge=16,
        description="Most training memory (weights, gradients, optimizer state, one batch's activations; by estimate) "
                    "an experiment on the cpu queue may need, in MiB.",
    )
    gpu_max_memory_mb: int = Field(
        65536, ge=16, description="The same for the gpu queue, in MiB (the GPU's memory less a margin).")
    max_run_minutes: float = Field(
        24 * 60, gt=0, description="Longest wall-clock time any run may train; training.max_minutes may only lower it.")
    # -- streams and connections ---------------------------------------------------------------
    max_streams: int = Field(200, ge=1, description="Most metric streams (SSE) open at once on this api (429 above).")
    max_streams_per_user: int = Field(20, ge=1, description="Most metric streams one user or token may hold open.")
    db_pool_size: int = Field(10, ge=1, description="Database connections the api keeps open.")
    db_max_overflow: int = Field(10, ge=0, description="Extra connections the api may open under load.")
    db_pool_timeout_s: float = Field(5.0, gt=0, description="Seconds a request waits for a database connection (503 after).")
    api_max_connections: int = Field(
        1000, ge=1, description="Concurrent connections uvicorn serves; more get 503 at once.")
    # -- quotas and rate limits per project -------------------------------------------------------
    max_active_experiments: int = Field(
        100, ge=1, description="Queued and running experiments a project may have at once (429 above).")
    max_project_storage_mb: int = Field(
        20 * 1024, ge=1, description="Dataset uploads a project may store, in MiB (413 above).")
    max_metric_points: int = Field(
        5_000_000, ge=1, description="Most metric points one experiment may record (the rest are refused with 422).")
    requests_per_minute: int = Field(
        1200, ge=1, description="Requests one token, session or anonymous address may make per minute (429 above).")
    login_attempts_per_minute: int = Field(
        10, ge=1, description="Sign-in attempts per user name and per address per minute (429 above).")
    max_tokens_per_user: int = Field(100, ge=1, description="Most live API tokens one user may hold.")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: object) -> object:
        if isinstance(v, str):
            return [h.strip() for h in v.split(",") if h.strip()]
        return v

    @field_validator("database_url", "broker_url")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            return None
        return v

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'descent.db').resolve()}"

    @cached_property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def checkpoint_dir(self) -> Path:
        return (self.data_dir / "checkpoints").resolve()

    @property
    def upload_dir(self) -> Path:
        return (self.data_dir / "datasets").resolve()

    def checkpoint_path(self, experiment_id: int, which: str = "last") -> Path:
        """``last.pt``: resume point written every epoch; ``final.pt``: the trained weights."""
        return self.checkpoint_dir / str(experiment_id) / f"{which}.pt"

    def model_path(self, experiment_id: int, format: str = "pt2", which: str = "last") -> Path:
        """A trained model's file: ``format`` ``pt2`` (``torch.export`` program with its preprocessing,
        ``worker.export``), ``onnx`` (the same as ONNX) or ``state_dict`` (the bare weights); ``which``
        ``last`` (the weights the run ended with) or ``best`` (its best epoch's, ``core.spec.monitor``):
        ``model.pt2``, ``model-best.onnx``, ``final.pt``, ``best.pt``, …"""
        if format == "state_dict":
            return self.checkpoint_path(experiment_id, "final" if which == "last" else "best")
        suffix = "" if which == "last" else f"-{which}"
        return self.checkpoint_dir / str(experiment_id) / f"model{suffix}.{format}"

