"""One limit on every request body but the dataset upload's (which has its own, larger one):
``DESCENT_MAX_REQUEST_BYTES``.  A declared ``Content-Length`` above it is answered 413 before
the body is read; a body sent without a length (chunked) is read up to the limit and refused
as soon as it passes it, so no JSON parser ever sees more."""

from __future__ import annotations

import json

from api.ids import parse_size


class BodyLimit:
    def __init__(self, app, *, max_bytes: int, exempt: str):
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") == self.exempt:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"content-length")
        if header is not None:
            declared = parse_size(header.decode("latin-1"))
            if declared is not None and declared > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # no declared length: read it here, within the limit, then hand the app the same body
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        payload = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes "
                                        "(DESCENT_MAX_REQUEST_BYTES); send less per request"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
