"""The request's unit of work (app.api.unit_of_work.get_session): which routes get a
transaction, and how it ends."""

from collections.abc import AsyncIterator

import pytest
from fastapi import Depends
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.requests import Request

from app.api.unit_of_work import AutocommitSession, get_session
from app.core.db import AUTOCOMMIT_OPTION

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def endpoint() -> None:
    """A route's endpoint; never called here."""


def request_for(method: str, *, dependencies: list[object] | None = None) -> Request:
    route = APIRoute("/", endpoint, methods=[method], dependencies=dependencies)  # type: ignore[arg-type]
    scope = {"type": "http", "method": method, "path": "/", "headers": [], "route": route}
    return Request(scope)


async def enter(
    method: str, *, dependencies: list[object] | None = None
) -> tuple[AsyncIterator[Session], Session]:
    dependency = get_session(request_for(method, dependencies=dependencies))
    return dependency, await anext(dependency)


def autocommit(session: Session) -> bool:
    return bool(session.get_bind().get_execution_options().get(AUTOCOMMIT_OPTION))


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PATCH", "DELETE"])
async def test_a_route_gets_a_transaction_whatever_its_method(method: str) -> None:
    dependency, session = await enter(method)

    assert not autocommit(session)
    await dependency.aclose()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_route_that_declares_it_gets_an_autocommit_session(method: str) -> None:
    dependency, session = await enter(method, dependencies=[AutocommitSession])

    assert autocommit(session)
    await dependency.aclose()


async def test_other_route_dependencies_do_not_make_a_session_autocommit() -> None:
    async def unrelated() -> None:
        pass

    dependency, session = await enter("GET", dependencies=[Depends(unrelated)])

    assert not autocommit(session)
    await dependency.aclose()


async def test_a_write_commits_when_the_request_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    dependency, session = await enter("POST")
    session.begin()  # the request used its session
    commits: list[Session] = []
    monkeypatch.setattr(session, "commit", lambda: commits.append(session))

    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    assert commits == [session]


async def test_a_session_the_request_never_used_is_not_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dependency, session = await enter("POST")
    monkeypatch.setattr(session, "commit", lambda: pytest.fail("committed an unused session"))

    with pytest.raises(StopAsyncIteration):
        await anext(dependency)


async def test_a_write_rolls_back_when_the_request_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    dependency, session = await enter("POST")
    session.begin()
    rollbacks: list[Session] = []
    monkeypatch.setattr(session, "rollback", lambda: rollbacks.append(session))
    monkeypatch.setattr(session, "commit", lambda: pytest.fail("committed a failed request"))

    with pytest.raises(RuntimeError):
        await dependency.athrow(RuntimeError("boom"))

    assert rollbacks == [session]


async def test_a_failing_commit_reaches_the_caller_and_rolls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dependency, session = await enter("PATCH")
    session.begin()
    rollbacks: list[Session] = []

    def fail() -> None:
        raise RuntimeError("commit failed")

    monkeypatch.setattr(session, "commit", fail)
    monkeypatch.setattr(session, "rollback", lambda: rollbacks.append(session))

    with pytest.raises(RuntimeError, match="commit failed"):
        await anext(dependency)
    assert rollbacks == [session]
