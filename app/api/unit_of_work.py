"""The request's unit of work: the one place a request's session is opened, committed, rolled
back and closed."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from app.core.db import ReadOnlySessionLocal, SessionLocal
from app.core.threads import in_thread


async def autocommit_session() -> None:
    """Declared, never called for its value: see ``AutocommitSession``."""


# Declared by a route (``dependencies=[AutocommitSession]``) whose statements may each commit
# on their own: reads, which then need no COMMIT round trip and on SQLite take no write lock,
# and the routes that check a password, whose writes are single statements (login, password
# and email changes), so no transaction is held while bcrypt runs and the login budget's own
# unit of work (app.services.login_budget) never waits for the request's. Every other route's
# session is one transaction, whatever its method.
AutocommitSession = Depends(autocommit_session)


def declares_autocommit(route: APIRoute) -> bool:
    return any(dependency.dependency is autocommit_session for dependency in route.dependencies)


def _commit(session: Session) -> None:
    if session.in_transaction():
        session.commit()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request and, unless the route declares ``AutocommitSession``, one
    transaction, committed before the response is sent (``SessionDep`` has
    ``scope="function"``): a failed commit is an error response, never a 2xx. Any error rolls
    the work back. Repositories only flush.

    An async dependency, so entering costs no thread: a Session does no I/O until its first
    query, which runs in the route's thread. Committing and rolling back run in a database
    thread; an autocommit session has nothing to finish, and closing it is no I/O.
    """
    autocommit = declares_autocommit(request.scope["route"])
    session = (ReadOnlySessionLocal if autocommit else SessionLocal)()
    try:
        yield session
        if not autocommit:
            await in_thread(_commit, session)
    except BaseException:
        try:
            await in_thread(session.rollback)
        finally:
            session.close()  # the last resort if cancelled before the rollback ran
        raise
    session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
