"""``Idempotency-Key`` on creating POSTs: a retry gets the first response again.

A create route declares whose keys it honours: ``dependencies=[IdempotentCreate]`` (the
caller's, checked first) or ``[IdempotentSignUp]`` (anonymous: the key alone). Before the
endpoint runs, the dependency locks and looks the key up in the request's transaction
(app.services.idempotency): a stored response is replayed, a key in use by a running request
is 409, a key used for another request 422. After the endpoint, the route (app.api.routing)
stores a 2xx response in the same transaction, so the row and its response commit together.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import WithJsonSchema
from sqlalchemy.orm import Session

from app.api.deps import CurrentCaller, SessionDep
from app.core.threads import in_thread
from app.schemas.idempotency import StoredResponse
from app.services import idempotency as idempotency_service
from app.services.idempotency import KEY_HEADER

REPLAYED_HEADER = "Idempotent-Replayed"
# Response headers a replay repeats (with the status and body).
REPLAYED_HEADERS = ("Location", "ETag")
_ANONYMOUS = "anonymous"
# Where the route finds what the dependency reserved (see module docstring).
_RESERVATION = "app.idempotency_reservation"

KeyHeader = Annotated[
    str | None,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[!-~]{1,255}$",
            "examples": ["9b2f6c1e-7a4d-4c1b-8f0e-3d5a6b7c8d9e"],
        }
    ),
    Header(
        alias=KEY_HEADER,
        pattern="^[!-~]{1,255}$",
        description="1-255 visible ASCII characters, a UUID typically. A retry with the same "
        "key and body within 24 hours gets the first response again (with "
        f"`{REPLAYED_HEADER}: true`) and nothing is done twice; the same key with another "
        "body is 422; while the first request runs, 409. Only 2xx responses are kept. Keys "
        "are kept in the database, also when `REDIS_URL` is set: stored in the create's own "
        "transaction, the response commits with the row it describes or not at all.",
    ),
]


@dataclass(slots=True)
class Reservation:
    """A key held by this request's transaction, to be stored with the response."""

    session: Session
    scope: str
    key: str
    fingerprint: str

    def record(self, response: Response) -> None:
        stored = StoredResponse(
            status_code=response.status_code,
            headers={
                name: response.headers[name]
                for name in REPLAYED_HEADERS
                if name in response.headers
            },
            body=bytes(response.body).decode(),
        )
        idempotency_service.record(
            self.session,
            scope=self.scope,
            key=self.key,
            fingerprint=self.fingerprint,
            response=stored,
        )


class Replay(Exception):
    """The stored response to answer instead of running the endpoint."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored

    def response(self) -> Response:
        return Response(
            content=self.stored.body,
            status_code=self.stored.status_code,
            headers={**self.stored.headers, REPLAYED_HEADER: "true"},
            media_type="application/json",
        )


def _fingerprint(request: Request, body: bytes) -> str:
    """The operation and the body's JSON value (key order and spacing aside)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    route: APIRoute = request.scope["route"]
    digest = hashlib.sha256(f"{request.method} {route.path_format}\0".encode() + canonical)
    return digest.hexdigest()


async def _reserve(request: Request, session: Session, key: str | None, scope: str) -> None:
    if key is None:
        return
    fingerprint = _fingerprint(request, await request.body())
    stored = await in_thread(
        idempotency_service.replay_or_reserve,
        session,
        scope=scope,
        key=key,
        fingerprint=fingerprint,
    )
    if stored is not None:
        raise Replay(stored)
    request.scope[_RESERVATION] = Reservation(session, scope, key, fingerprint)


async def reserve_callers_key(
    request: Request, session: SessionDep, caller: CurrentCaller, key: KeyHeader = None
) -> None:
    await _reserve(request, session, key, scope=f"user:{caller.id}")


async def reserve_anonymous_key(
    request: Request, session: SessionDep, key: KeyHeader = None
) -> None:
    await _reserve(request, session, key, scope=_ANONYMOUS)


IdempotentCreate = Depends(reserve_callers_key)
IdempotentSignUp = Depends(reserve_anonymous_key)


def declares_idempotency(route: APIRoute) -> bool:
    calls = {dependency.dependency for dependency in route.dependencies}
    return bool(calls & {reserve_callers_key, reserve_anonymous_key})


def reservation_of(request: Request) -> Reservation | None:
    reservation: Reservation | None = request.scope.get(_RESERVATION)
    return reservation
