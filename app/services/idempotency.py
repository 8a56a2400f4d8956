"""Idempotent creates: a retry with the same ``Idempotency-Key`` gets the first response again
and nothing is done twice.

Everything happens in the request's own transaction: the key is locked and looked up before
the create runs, and its response is stored in the same transaction as the row it describes,
so a crash at any point leaves either both or neither.
"""

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from app.core.errors import ConflictError, InvalidInputError
from app.crud.idempotency_key import idempotency_key_crud
from app.models.base import utc_now
from app.schemas.idempotency import IdempotencyKeyCreate, StoredResponse

KEY_LIFETIME = timedelta(hours=24)
KEY_HEADER = "Idempotency-Key"


def replay_or_reserve(
    session: Session, *, scope: str, key: str, fingerprint: str
) -> StoredResponse | None:
    """The stored response when this key already made this request, else None: the key is
    held until the transaction ends, and the create may go ahead.

    Raises ConflictError (409) while another request with the key is still running, and
    InvalidInputError (422) when the key was used for a different request."""
    if not idempotency_key_crud.try_lock(session, scope=scope, key=key):
        raise ConflictError(f"A request with this {KEY_HEADER} is still in progress; retry later")
    stored = idempotency_key_crud.get_by_key(session, scope=scope, key=key)
    if stored is None:
        return None
    if stored.expires_at <= utc_now():
        idempotency_key_crud.delete(session, db_obj=stored)
        return None
    if stored.fingerprint != fingerprint:
        raise InvalidInputError(
            f"This {KEY_HEADER} was used for a different request",
            loc=("header", KEY_HEADER),
            error_type="idempotency_key_reused",
        )
    return StoredResponse(
        status_code=stored.status_code, headers=json.loads(stored.headers), body=stored.body
    )


def record(
    session: Session, *, scope: str, key: str, fingerprint: str, response: StoredResponse
) -> None:
    """Keep ``response`` for ``KEY_LIFETIME``, in the create's transaction."""
    now = utc_now()
    idempotency_key_crud.purge_expired(session, now=now)
    idempotency_key_crud.create(
        session,
        obj_in=IdempotencyKeyCreate(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            status_code=response.status_code,
            headers=json.dumps(response.headers),
            body=response.body,
            expires_at=now + KEY_LIFETIME,
        ),
    )
