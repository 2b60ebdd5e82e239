"""``create_app``: the FastAPI application factory (``uvicorn --factory api.app:create_app``).

It refuses to start against a database that is not at the newest migration, enqueues through
an injectable ``enqueuer`` (default: Celery ``send_task`` by name, so the worker is never
imported), runs the reconciler in the background and serves the dashboard when it is built.

A send after commit that fails (the broker down, or frozen past ``core.queue.PUBLISH_TIMEOUT_S``)
does not fail the request: the run is stored and ``queued``, the failure is logged and the run
marked never sent, and the reconciler sends it on its next pass once the broker answers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import APIRouter, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api import errors, limits, openapi
from api.audit.router import router as audit_router
from api.auth.middleware import AllowedHosts, RequireCredentials
from api.auth.router import router as auth_router
from api.body_limit import BodyLimit
from api.catalog.router import router as catalog_router
from api.datasets.limits import DeclaredSizeLimit
from api.datasets.router import router as datasets_router
from api.experiments.router import router as experiments_router
from api.health import check_broker
from api.health import router as health_router
from api.landscapes.router import router as landscapes_router
from api.metrics.router import router as metrics_router
from api.projects.router import router as projects_router
from api.queue.router import router as queue_router
from api.races.router import router as races_router
from api.splits.router import router as splits_router
from api.studies import controller as studies_controller
from api.studies.router import router as studies_router
from api.tokens.router import router as tokens_router
from core.periodic import Periodic
from core.queue import LAB_JOB_LIMIT_S, LANDSCAPE_TASK, RACE_TASK
from core.settings import Settings
from store.db import make_engine, make_sessionmaker, session_scope
from store.migrate import current_revision, current_revision_is_head, head_revision
from store.models import Landscape, Race
from store.repositories import lab_jobs
from store.repositories.requeue import UNSENT_RESEND_S, mark_unsent, requeue_stale

API_PREFIX = "/api/v1"
WEB_STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
log = logging.getLogger(__name__)


class NotMigratedError(RuntimeError):
    pass


def default_enqueuer(settings: Settings) -> Callable[[int, str], None]:
    from core.queue import make_celery, send_training

    celery_app = make_celery(settings)
    return partial(send_training, celery_app)


def default_lab_sender(settings: Settings) -> Callable[[str, int], None]:
    from core.queue import make_celery, send_lab_job

    return partial(send_lab_job, make_celery(settings))


def failing_unsent_lab_jobs(session_factory: sessionmaker[Session], send: Callable[[str, int], None]
                            ) -> Callable[[str, int], None]:
    """``send`` for the after-commit hook: a lab job the broker did not take is marked failed
    with what to do (asking again makes a new one) instead of waiting queued for nobody."""
    models = {RACE_TASK: Race, LANDSCAPE_TASK: Landscape}

    def send_or_fail(task: str, job_id: int) -> None:
        try:
            send(task, job_id)
        except Exception as exc:  # noqa: BLE001 - the request is answered; the job says why it will not run
            log.warning("lab job %s %s was not sent (%s); marked failed", task, job_id, exc)
            with session_scope(session_factory) as session:
                lab_jobs.fail(session, models[task], job_id, f"the broker did not take it ({exc}); ask again once "
                                                             "the broker answers")

    return send_or_fail


def marking_unsent(session_factory: sessionmaker[Session], enqueue: Callable[[int, str], None]
                   ) -> Callable[[int, str], None]:
    """``enqueue`` for the after-commit hook: a send that fails is logged and the run marked
    never sent (the reconciler's next pass sends it) instead of failing the answered request."""
    def send(experiment_id: int, queue: str) -> None:
        try:
            enqueue(experiment_id, queue)
        except Exception as exc:  # noqa: BLE001 - the run is stored; the reconciler sends it
            log.warning("experiment %s is stored and queued but was not sent (%s); the reconciler sends it once "
                        "the broker answers", experiment_id, exc)
            with session_scope(session_factory) as session:
                mark_unsent(session, experiment_id)

    return send


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
    enqueuer: Callable[[int, str], None] | None = None,
    reconcile_interval_s: float | None = None,
    broker_check: Callable[[], None] | None = None,
    lab_sender: Callable[[str, int], None] | None = None,
) -> FastAPI:
    """The app.  ``reconcile_interval_s``: seconds between reconciler passes (default a quarter
    of ``settings.requeue_after_s``, at most ``UNSENT_RESEND_S`` so a run whose send failed goes
    out within seconds of the broker answering; 0 disables it)."""
    settings = settings or Settings()
    engine = None
    if session_factory is None:
        engine = migrated_engine(settings)
        session_factory = make_sessionmaker(engine)
    if reconcile_interval_s is None:
        reconcile_interval_s = min(UNSENT_RESEND_S, settings.requeue_after_s / 4)
    enqueue = enqueuer or default_enqueuer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        reconciler = None
        if reconcile_interval_s > 0:
            reconciler = Periodic("descent-reconciler", reconcile_interval_s,
                                  partial(_sweep, session_factory, enqueue, settings.requeue_after_s,
                                          settings.stale_heartbeat_s))
            reconciler.start()
        app.state.reconciler = reconciler
        studies = None
        if reconcile_interval_s > 0:
            studies = Periodic("descent-studies", min(studies_controller.PASS_S, reconcile_interval_s),
                               partial(studies_controller.advance_all, session_factory, settings,
                                       app.state.enqueuer), first_at_once=True)
            studies.start()
        try:
            yield
        finally:
            if reconciler is not None:
                reconciler.stop()
            if studies is not None:
                studies.stop()
            if engine is not None:
                engine.dispose()

    app = FastAPI(
        title="Descent", version="0.1.0", lifespan=lifespan,
        description="Define experiments, datasets and splits; read metrics and comparisons.",
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs", redoc_url=None,
        generate_unique_id_function=operation_id, separate_input_output_schemas=False,
        servers=openapi.SERVERS, license_info=openapi.LICENSE,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.enqueuer = marking_unsent(session_factory, enqueue)
    app.state.send_lab = failing_unsent_lab_jobs(session_factory, lab_sender or default_lab_sender(settings))
    app.state.broker_check = broker_check or partial(check_broker, settings)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(DeclaredSizeLimit, path=f"{API_PREFIX}/datasets", max_bytes=settings.max_upload_bytes)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, exempt=f"{API_PREFIX}/datasets")
    app.add_middleware(RequireCredentials, prefix=API_PREFIX)
    # before anything reads a body or a credential: a caller past its rate is refused at once
    limits.install(app, settings, API_PREFIX)
    # outermost: a request naming a host we do not serve (DNS rebinding) is refused before anything else
    app.add_middleware(AllowedHosts, hosts=settings.allowed_hosts)
    _mount_routes(app)
    return app


def operation_id(route) -> str:
    """An operation's id is its endpoint function's name (``create_experiment``): generated
    clients name their methods and classes after it."""
    return route.name


def migrated_engine(settings: Settings):
    """An engine on the configured database, refused unless it is at the newest migration."""
    engine = make_engine(settings.resolved_database_url, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout_s)
    if not current_revision_is_head(engine):
        found = current_revision(engine)
        engine.dispose()
        raise NotMigratedError(
            f"the database is at migration {found or 'none'}, not {head_revision()}: "
            "run `descent migrate` (same DESCENT_DATABASE_URL) and start the api again"
        )
    return engine


def _mount_routes(app: FastAPI) -> None:
    """Every resource under ``/api/v1``; the schema and docs also at the root, where people look
    first; the dashboard at ``/`` when it is built."""
    api = APIRouter(prefix=API_PREFIX)
    for router in (auth_router, projects_router, tokens_router, catalog_router, datasets_router, splits_router,
                   experiments_router, studies_router, metrics_router, queue_router, audit_router, health_router,
                   landscapes_router, races_router):
        api.include_router(router)
    app.include_router(api)
    app.add_api_route("/openapi.json", lambda: app.openapi(), include_in_schema=False)
    app.add_api_route("/docs", lambda: _docs_redirect(), include_in_schema=False)
    if WEB_STATIC.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=WEB_STATIC, html=True), name="web")


def _sweep(session_factory: sessionmaker[Session], enqueue: Callable[[int, str], None], older_than_s: float,
           stale_after_s: float):
    """Re-send the unsent runs, queued ones not sent for ``older_than_s`` and running ones silent
    for ``stale_after_s`` (their worker died: an idle worker resumes them); fail the lab jobs
    whose lab worker died mid-job (``core.queue.LAB_JOB_LIMIT_S``)."""
    with session_scope(session_factory) as session:
        lab_jobs.fail_abandoned(session, LAB_JOB_LIMIT_S)
        return requeue_stale(session, enqueue, older_than_s, stale_after_s)


def _docs_redirect():
    from fastapi.responses import RedirectResponse

    return RedirectResponse(f"{API_PREFIX}/docs")
