"""``descent api``: serve the HTTP api with uvicorn (the factory ``api.app:create_app``).

On a non-loopback ``--host`` it serves a network, so it starts only when ``DESCENT_ALLOWED_HOSTS``
names the host names clients use and the database has a user to sign in as.  It serves at most
``DESCENT_API_MAX_CONNECTIONS`` connections at once (uvicorn's ``limit_concurrency``)."""

from __future__ import annotations

import argparse
import sys

from descent.commands.hosts import is_loopback, refusal


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="default 127.0.0.1; another address needs DESCENT_ALLOWED_HOSTS and a user")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import NotMigratedError, create_app
    from core.settings import Settings

    settings = Settings()
    network = not is_loopback(args.host)
    if network and "allowed_hosts" not in settings.model_fields_set:
        print(refusal("descent api", args.host, "DESCENT_ALLOWED_HOSTS (the names clients use, comma-separated)"),
              file=sys.stderr)
        return 2
    try:
        create_app(settings)  # fail here, with the fix named, rather than inside uvicorn's worker
    except NotMigratedError as exc:
        print(f"descent api: {exc}", file=sys.stderr)
        return 1
    if network and not _has_users(settings):
        print(f"descent api: refusing to listen on {args.host} with no user to sign in as: create one first "
              "(`descent user create NAME --admin`)", file=sys.stderr)
        return 2
    # past DESCENT_API_MAX_CONNECTIONS open connections uvicorn answers 503 at once (per worker
    # process), so a flood of clients costs a refusal each rather than the process's memory
    uvicorn.run("api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level,
                # uvicorn counts the connection asking among the concurrent ones: +1 serves N
                limit_concurrency=settings.api_max_connections + 1)
    return 0


def _has_users(settings) -> bool:
    from descent.commands.database import transaction
    from store.repositories import users as users_repo

    with transaction(settings.resolved_database_url, read_only=True) as session:
        return users_repo.count(session) > 0
