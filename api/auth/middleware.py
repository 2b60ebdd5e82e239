"""Refuse a request to the api that carries no credentials at all before its body is read (an
anonymous 200 MB upload is answered 401 at once, not after parsing).  The credentials
themselves are checked by the routes' dependencies (``api.auth.principal``)."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

from api.auth.principal import NO_CREDENTIALS, SESSION_COOKIE

# what an anonymous caller may reach: the health check, signing in, and the schema and its docs
PUBLIC_PATHS = frozenset({"/health", "/auth/login", "/auth/link", "/openapi.json", "/docs",
                          "/docs/oauth2-redirect"})


class RequireCredentials:
    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self._guarded(scope["path"]) or _has_credentials(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": NO_CREDENTIALS}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="descent"'),
        ]})
        await send({"type": "http.response.body", "body": body})

    def _guarded(self, path: str) -> bool:
        if not path.startswith(self.prefix + "/"):
            return False
        return path[len(self.prefix):] not in PUBLIC_PATHS


def credentials_of(scope) -> tuple[bytes | None, str | None]:
    """The raw ``Authorization`` header and the dashboard session cookie a request carries (each
    None when absent), read from the ASGI scope before any endpoint runs."""
    authorization, session = None, None
    for name, value in scope.get("headers") or ():
        if name == b"authorization" and authorization is None:
            authorization = value
        elif name == b"cookie" and session is None:
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:
                continue
            if SESSION_COOKIE in cookie:
                session = cookie[SESSION_COOKIE].value
    return authorization, session


def _has_credentials(scope) -> bool:
    return credentials_of(scope) != (None, None)


class AllowedHosts:
    """Answer only requests whose ``Host`` is one of ``hosts`` (the port ignored): a page on
    another site that points its own name at this machine (DNS rebinding) gets a 400."""

    def __init__(self, app, hosts: list[str]):
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)
        self.any = "*" in self.hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self.any:
            await self.app(scope, receive, send)
            return
        host = _host(scope)
        if host in self.hosts:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": f"this server does not answer to the host name {host[:100]!r}: add it to "
                                     "DESCENT_ALLOWED_HOSTS (or --allowed-host) if it is yours"}).encode()
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _host(scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1").lower()
            if host.startswith("["):  # an IPv6 literal, [::1]:8000
                return host[: host.find("]") + 1]
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""
