"""Refuse an oversized upload before reading it.

FastAPI reads (and spools to disk) a whole multipart body before the endpoint runs, so the
endpoint's own size check comes after the work.  This ASGI wrapper answers 413 as soon as the
request's declared ``Content-Length`` exceeds the limit, without touching the body; the
endpoint still checks what it reads, for a client that declares no length."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from api.ids import parse_size

# a multipart body carries the form fields and part headers beside the file itself
MULTIPART_OVERHEAD = 64 * 1024


class DeclaredSizeLimit:
    def __init__(self, app, *, path: str, max_bytes: int):
        self.app, self.path, self.max_bytes = app, path, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") == self.path:
            header = dict(scope.get("headers") or []).get(b"content-length")
            declared = parse_size(header.decode("latin-1")) if header is not None else None
            if declared is not None and declared > self.max_bytes + MULTIPART_OVERHEAD:
                response = JSONResponse(
                    {"detail": f"upload larger than {self.max_bytes} bytes (DESCENT_MAX_UPLOAD_BYTES)"},
                    status_code=413, headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
