"""At most ``DESCENT_LOGIN_ATTEMPTS_PER_MINUTE`` sign-in attempts per user name and per client
address (right or wrong: a password guesser is slowed whichever it tries, and one address
cannot spread its guesses over many names).  The one-time links count against the address.

A side effect worth knowing: someone who keeps failing as ``alice`` also keeps ``alice`` from
signing in with her password for that minute; her tokens, her open sessions and a new link
(``descent up``, ``descent user``) still work."""

from __future__ import annotations

from fastapi import Request

from api.limits.buckets import Buckets
from api.limits.errors import TooManyRequests, retry_after
from api.limits.rate import address_key


class LoginAttempts:
    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.buckets = Buckets(per_minute, 60.0)

    def check(self, request: Request, username: str | None = None) -> None:
        """Count one attempt from ``request``'s address (and for ``username``, when given), or
        raise 429 if either has had its minute's attempts."""
        keys = [address_key(request.client.host if request.client else None)]
        if username is not None:
            keys.append(f"user {username}")
        wait = self.buckets.take(*keys)
        if wait > 0:
            seconds = retry_after(wait)
            which = "this user name" if username is not None and self.buckets.wait(keys[1]) > 0 else "this address"
            raise TooManyRequests(f"too many sign-in attempts for {which}: at most {self.per_minute} a minute "
                                  f"(DESCENT_LOGIN_ATTEMPTS_PER_MINUTE); try again in {seconds} s", seconds)


def login_attempts(request: Request) -> LoginAttempts:
    """The app's counter (``api.limits.install`` makes it)."""
    return request.app.state.login_attempts
