"""At most ``DESCENT_REQUESTS_PER_MINUTE`` requests to the api per caller, in each api process.

The caller is the bearer token, else the dashboard session cookie, else the client address
(an IPv6 address by its /64, which one machine usually holds whole).  Each has a token bucket
(``api.limits.buckets``) of a minute's allowance, so a page load's burst passes and a steady
caller gets the per-minute rate; past it the answer is 429 with ``Retry-After``.  The health
check and the dashboard's files are not counted.

A credential is only a claim until a route has checked it, and a made-up token each request
would otherwise get a full bucket each time: until the api has once answered a credential with
something other than 401, its requests also count against their address.  Only the secrets'
digests are kept, never the secrets."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from api.auth.middleware import credentials_of
from api.limits.buckets import Buckets, RecentKeys
from api.limits.errors import retry_after, send_too_many

EXEMPT = frozenset({"/health"})  # under the api prefix


def address_key(host: str | None) -> str:
    """A client address as a bucket key: IPv4 as it is, IPv6 by its /64."""
    if not host:
        return "address unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"address {host[:100]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"address {address.ipv4_mapped}"
        return f"address {ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"address {address}"


def _digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:32]


def caller_of(scope: dict[str, Any]) -> tuple[str, str | None]:
    """(bucket key, credential key or None) of a request: the token's or the session's digest,
    else its address."""
    authorization, session = credentials_of(scope)
    if authorization is not None:
        key = f"token {_digest(authorization)}"
        return key, key
    if session is not None:
        key = f"session {_digest(session.encode('latin-1', 'replace'))}"
        return key, key
    return address_key((scope.get("client") or (None,))[0]), None


class RateLimit:
    def __init__(self, app, *, per_minute: int, prefix: str):
        self.app = app
        self.per_minute = per_minute
        self.prefix = prefix
        self.buckets = Buckets(per_minute, 60.0)
        self.accepted = RecentKeys()  # credentials the api has answered with something other than 401

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self._counted(scope["path"]):
            await self.app(scope, receive, send)
            return
        key, credential = caller_of(scope)
        keys = [key]
        if credential is not None and credential not in self.accepted:
            keys.append(address_key((scope.get("client") or (None,))[0]))
        wait = self.buckets.take(*keys)
        if wait > 0:
            seconds = retry_after(wait)
            who = next((k for k in keys if self.buckets.wait(k) > 0), key).split(" ", 1)[0]
            await send_too_many(send, f"too many requests from this {who}: at most {self.per_minute} a minute "
                                      f"(DESCENT_REQUESTS_PER_MINUTE); try again in {seconds} s", seconds)
            return
        if credential is None:
            await self.app(scope, receive, send)
            return

        async def watched(message):
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    self.accepted.discard(credential)
                else:
                    self.accepted.add(credential)
            await send(message)

        await self.app(scope, receive, watched)

    def _counted(self, path: str) -> bool:
        return path.startswith(self.prefix + "/") and path[len(self.prefix):].rstrip("/") not in EXEMPT
