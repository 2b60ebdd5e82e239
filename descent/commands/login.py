"""``descent login`` and ``descent logout``: an API token for this machine, kept in the user's
token file (``descent.credentials``, mode 0600) under the api's address.

``login`` signs in with a username and password (``--password-env VAR``, else a hidden
prompt), uses that short dashboard session (its cookie and CSRF token) to create a token named
"descent login on <host>", saves the token, and signs the session out.  ``logout`` revokes the
saved token on the api and removes it from the file.  Both speak HTTP only."""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys

import httpx

from descent import credentials
from descent.client import DEFAULT_URL, ApiError, Client, NotSignedIn


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help=f"api address (default: $DESCENT_URL or {DEFAULT_URL})")
    if name == "login":
        parser.add_argument("--username", help="default: ask")
        parser.add_argument("--password-env", metavar="VAR",
                            help="read the password from this environment variable (default: ask, hidden)")


def run(args: argparse.Namespace) -> int:
    url = (args.url or os.environ.get("DESCENT_URL") or DEFAULT_URL).rstrip("/")
    return login(url, args) if args.command == "login" else logout(url)


def login(url: str, args: argparse.Namespace) -> int:
    username = args.username or input("username: ").strip()
    if args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            print(f"descent login: ${args.password_env} is not set or empty", file=sys.stderr)
            return 1
    else:
        password = getpass.getpass(f"password of {username} at {url}: ")
    with Client(url, token="") as client:  # a stale saved token must not stand in for the session
        try:
            client.login(username, password)
            created = client.create_token(f"descent login on {socket.gethostname()}"[:100])
            path = credentials.save_token(url, created["token"])
            try:
                client.logout()
            except (ApiError, httpx.HTTPError):
                pass  # the token is saved; the session left behind ends by itself
        except NotSignedIn:
            print(f"descent login: wrong username or password for {url}", file=sys.stderr)
            return 1
        except (ApiError, httpx.HTTPError) as exc:
            print(f"descent login: {_reason(url, exc)}", file=sys.stderr)
            return 1
    print(f"signed in to {url} as {username}; token {created['prefix']}… saved in {path}")
    return 0


def logout(url: str) -> int:
    token = credentials.saved_token(url)
    path = credentials.tokens_path()
    if not token:
        print(f"descent logout: no token saved for {url} in {path}; nothing to do", file=sys.stderr)
        return 0
    prefix = token[: credentials.PREFIX_CHARS]
    note = "revoked and"
    with Client(url, token) as client:
        try:
            for listed in client.tokens():
                if listed["prefix"] == prefix and listed.get("revoked_at") is None:
                    client.revoke_token(listed["id"])
        except NotSignedIn:
            note = "no longer valid, so"
        except (ApiError, httpx.HTTPError) as exc:
            print(f"descent logout: {_reason(url, exc)}; the token stays in {path}", file=sys.stderr)
            return 1
    credentials.forget_token(url)
    print(f"signed out of {url}: token {prefix}… {note} removed from {path}")
    return 0


def _reason(url: str, exc: Exception) -> str:
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach {url}: {exc}"
    return str(exc)
