"""Identity rules shared by the api, the command line and the store: roles, API tokens and
passwords (no SQL, no HTTP).

- **Roles** in a project, each including the ones before it: ``viewer`` reads, ``editor`` also
  creates, cancels, clones and deletes the project's objects, ``owner`` also manages members.
  An instance admin acts as owner of every project; a ``worker`` token only reports metrics.
- **API tokens** are ``dsc_`` + 43 url-safe characters (256 random bits).  Only their SHA-256
  is stored, with the first characters as a visible prefix to tell them apart: a token has the
  entropy of a key, so a fast hash leaks nothing and a lookup costs one indexed read (a slow
  password hash would cost ~0.2 s per request).
- **Passwords** are hashed with Argon2id (pwdlib, argon2-cffi's parameters as recommended).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from functools import cache
from typing import Any

from core.choices import choice, values_of

Role = choice("Role", ("viewer", "editor", "owner"),
              "A member's role in a project: viewer reads; editor also creates, cancels, clones and deletes; "
              "owner also manages members.")
ROLES: tuple[str, ...] = values_of(Role)
TokenKind = choice("TokenKind", ("user", "worker"),
                   "Whose token it is: a user's (acts with the user's roles) or a worker's (reports metrics only).")

TOKEN_PREFIX = "dsc_"
TOKEN_BYTES = 32  # 256 bits
VISIBLE_CHARS = 12  # "dsc_" and the first 8 random characters
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 8


def at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` (None: no role) includes ``needed``."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visible_prefix(token: str) -> str:
    return token[:VISIBLE_CHARS]


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 20 <= len(value) <= 100


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be used, or None."""
    if not USERNAME.match(username):
        return "use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"use at least {MIN_PASSWORD} characters"
    if len(password) > 1024:
        return "use at most 1024 characters"
    return None


@cache
def _hasher() -> Any:
    from pwdlib import PasswordHash

    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bool(_hasher().verify(password, password_hash))
    except Exception:  # a malformed stored hash matches nothing
        return False


def dummy_verify() -> None:
    """Spend the time of one password check, so an unknown username answers as slowly as a
    wrong password (no user enumeration by timing)."""
    verify_password("x" * MIN_PASSWORD, _dummy_hash())


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))
