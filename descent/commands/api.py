"""``descent api``: serve the HTTP api with uvicorn (the factory ``api.app:create_app``)."""

from __future__ import annotations

import argparse
import sys


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import NotMigratedError, create_app

    try:
        create_app()  # fail here, with the fix named, rather than inside uvicorn's worker
    except NotMigratedError as exc:
        print(f"descent api: {exc}", file=sys.stderr)
        return 1
    uvicorn.run("api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level)
    return 0
