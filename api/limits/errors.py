"""The answer to a caller who asks too often or holds too much at once: 429 with ``Retry-After``
(whole seconds), in the api's error shape (``{"detail": "..."}``, ``api.errors``)."""

from __future__ import annotations

import json
import math

from api.errors import ApiError


def retry_after(seconds: float) -> int:
    """``Retry-After`` for a wait of ``seconds``: whole seconds (a float's last bits ignored), at least one."""
    return max(1, math.ceil(seconds - 1e-6))


class TooManyRequests(ApiError):
    """429: too many requests or sign-in attempts in a minute, or too many runs at once;
    ``Retry-After`` says when trying again may succeed."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: float):
        super().__init__(detail)
        self.retry_after_s = retry_after(retry_after_s)
        self.headers = {"Retry-After": str(self.retry_after_s)}


async def send_too_many(send, detail: str, retry_after_s: int) -> None:
    """The same answer from a pure ASGI middleware, before any route runs."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after_s).encode())]})
    await send({"type": "http.response.body", "body": body})
