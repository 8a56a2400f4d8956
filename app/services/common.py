from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.core.errors import ConflictError, PreconditionFailedError
from app.core.etags import Precondition, entity_tag
from app.models.base import VersionedMixin

STALE_PRECONDITION = "If-Match does not match the current version of the resource"


@contextmanager
def conflict_on_duplicate(detail: str) -> Iterator[None]:
    """A unique constraint that fires on flush (e.g. two sign-ups racing) is a 409, not a 500."""
    try:
        yield
    except IntegrityError as exc:
        raise ConflictError(detail) from exc


@contextmanager
def guarded_write(entity: VersionedMixin, precondition: Precondition | None) -> Iterator[None]:
    """Check the client's ``If-Match`` before writing, and turn a concurrent change caught by
    the version check during the write into 412 (the client asked for a version) or 409 (it
    did not: retry)."""
    if precondition is not None and not precondition.matches(etag_of(entity)):
        raise PreconditionFailedError(STALE_PRECONDITION)
    try:
        yield
    except StaleDataError as exc:
        if precondition is not None:
            raise PreconditionFailedError(STALE_PRECONDITION) from exc
        raise ConflictError(
            "The resource was changed by someone else during the request; retry"
        ) from exc


def etag_of(entity: VersionedMixin) -> str:
    return entity_tag(version=entity.version, created_at=entity.created_at)
