"""Idempotent submissions: ``POST /experiments``, ``/experiments/{id}/clone``, ``/datasets`` and
``/splits`` take an ``Idempotency-Key`` header, so a client that lost the response to a
submission can send it again without creating a second resource.

A key belongs to its user (a token acts as its user), so one user's keys never reveal another's
answers.  The first request with a key claims it by inserting its row in the request's own
transaction, before any work; the resource and the stored answer (status code and JSON body)
then commit together or not at all, so a crash never leaves one without the other, and a failed
request (4xx, 5xx) leaves nothing behind: its retry runs again.  A repeat of the same request
(method, path and the SHA-256 of its body) gets the stored answer back with
``Idempotent-Replayed: true``, and nothing runs or is enqueued again; the same key with another
request is 409.  Two requests with one key at the same time: the second waits for the first to
commit (PostgreSQL's unique index; SQLite's single writer) and then replays its answer.  Keys
expire after ``KEY_LIFETIME``; expired rows are deleted as keyed requests come.

The dataset upload's body is multipart, whose boundary each sender draws afresh for every send
(curl, httpx), so its request hash is of what the form says (its fields, the file's name and the
SHA-256 of its bytes), not of the raw bytes: a resent upload is the same request however it is
framed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api import errors
from api.auth.principal import UserDep
from api.deps import SessionDep
from store.models import utcnow
from store.repositories import idempotency as repo

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 200
KEY_DESCRIPTION = (
    "Any 1-200 printable ASCII characters (a UUID is a good choice), new for each submission. Sending the "
    "same request again with the same key within 24 hours creates nothing more: the first answer comes back "
    f"with `{REPLAYED_HEADER}: true`. The same key with a different request is 409."
)
Answer = tuple[int, BaseModel]  # the status code and the body of a successful submission

KeyHeader = Annotated[str | None, Header(alias=KEY_HEADER, min_length=1, max_length=MAX_KEY_LENGTH,
                                         pattern=r"^[\x20-\x7e]+$", description=KEY_DESCRIPTION)]


def responses(*codes: int, replayed: tuple[int, ...] = (201,)) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` of a keyed submission: ``codes`` and 409, and the replay header on
    the success codes ``replayed``."""
    header = {REPLAYED_HEADER: {"description": "`true` when this is the stored answer to an earlier request "
                                               f"with the same `{KEY_HEADER}`; absent otherwise.",
                                "schema": {"type": "string"}}}
    return {**errors.responses(*codes, 409), **{code: {"headers": header} for code in replayed}}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_sha256(fields: dict[str, Any], filename: str, data: bytes) -> str:
    """The request hash of a multipart upload: its form fields, file name and file bytes."""
    form = {"fields": fields, "filename": filename, "file_sha256": sha256_hex(data)}
    return sha256_hex(json.dumps(form, sort_keys=True, default=str).encode())


@dataclass(frozen=True)
class Idempotency:
    """The key a request carries (``None``: an ordinary request) and what identifies the request."""

    session: Session
    user_id: int
    key: str | None
    method: str
    path: str
    request_sha256: str | None  # None: the route hashes the request itself (the upload)

    def run(self, work: Callable[[], Answer], request_sha256: str | None = None) -> JSONResponse:
        """``work``'s answer, stored under the key in this transaction; or, for a repeat, the
        stored answer without running ``work``.  ``request_sha256`` overrides the body's hash."""
        if self.key is None:
            status_code, model = work()
            return JSONResponse(jsonable_encoder(model), status_code=status_code)
        request_sha256 = request_sha256 or self.request_sha256
        assert request_sha256 is not None, "the upload route passes its form's hash"
        now = utcnow()
        expired = now - KEY_LIFETIME
        repo.delete_expired(self.session, expired)
        key_id = repo.claim(self.session, user_id=self.user_id, key=self.key, method=self.method, path=self.path,
                            request_sha256=request_sha256, now=now, created_before=expired)
        if key_id is None:
            return self._replay(request_sha256)
        status_code, model = work()
        body = jsonable_encoder(model)
        repo.answer(self.session, key_id, status_code, body)
        return JSONResponse(body, status_code=status_code)

    def _replay(self, request_sha256: str) -> JSONResponse:
        row = repo.find(self.session, self.user_id, self.key)
        if row is None or row.status_code is None:
            raise errors.Conflict(f"a request with {KEY_HEADER} {self.key!r} is in progress or done: "
                                  "wait for it and fetch the result, or send a new key")
        if (row.method, row.path, row.request_sha256) != (self.method, self.path, request_sha256):
            raise errors.Conflict(f"{KEY_HEADER} {self.key!r} was used for a different request ({row.method} "
                                  f"{row.path} with another body): send a new key with a new request")
        return JSONResponse(row.response_json, status_code=row.status_code, headers={REPLAYED_HEADER: "true"})


async def _from_json_request(request: Request, principal: UserDep, session: SessionDep,
                             key: KeyHeader = None) -> Idempotency:
    # FastAPI has read the JSON body already (it is cached): the hash is of the bytes as sent
    body_sha256 = sha256_hex(await request.body()) if key is not None else None
    return Idempotency(session, principal.user_id, key, request.method, request.url.path[:500], body_sha256)


def _from_upload(request: Request, principal: UserDep, session: SessionDep, key: KeyHeader = None) -> Idempotency:
    # the multipart stream was consumed by the form parser: the route hashes the form (upload_sha256)
    return Idempotency(session, principal.user_id, key, request.method, request.url.path[:500], None)


IdempotencyDep = Annotated[Idempotency, Depends(_from_json_request)]
UploadIdempotencyDep = Annotated[Idempotency, Depends(_from_upload)]
