from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from app.core.errors import ConflictError


@contextmanager
def conflict_on_duplicate(detail: str) -> Iterator[None]:
    """A unique constraint that fires on flush (e.g. two sign-ups racing) is a 409, not a 500."""
    try:
        yield
    except IntegrityError as exc:
        raise ConflictError(detail) from exc
