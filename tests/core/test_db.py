"""The production session dependency: which requests get a transaction, and when it ends."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.orm import Session
from starlette.requests import Request

from app.core import db

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request(method: str, *, autocommit_route: bool = False) -> Request:
    scope = {"type": "http", "method": method, "path": "/", "headers": [], "state": {}}
    built = Request(scope)
    if autocommit_route:
        built.state.autocommit_session = True
    return built


async def enter(
    method: str, *, autocommit_route: bool = False
) -> tuple[AsyncIterator[Session], Session]:
    dependency = db.get_session(request(method, autocommit_route=autocommit_route))
    return dependency, await anext(dependency)


def autocommit(session: Session) -> bool:
    return bool(session.get_bind().get_execution_options().get(db.AUTOCOMMIT_OPTION))


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PATCH", "DELETE"])
async def test_a_route_gets_a_transaction_whatever_its_method(method: str) -> None:
    dependency, session = await enter(method)

    assert not autocommit(session)
    await dependency.aclose()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_route_may_ask_for_an_autocommit_session(method: str) -> None:
    dependency, session = await enter(method, autocommit_route=True)

    assert autocommit(session)
    await dependency.aclose()


async def test_a_write_commits_when_the_request_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    dependency, session = await enter("POST")
    session.begin()  # the request used its session
    commits: list[Session] = []
    monkeypatch.setattr(session, "commit", lambda: commits.append(session))

    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    assert commits == [session]


async def test_a_write_rolls_back_when_the_request_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    dependency, session = await enter("POST")
    rollbacks: list[Session] = []
    monkeypatch.setattr(session, "rollback", lambda: rollbacks.append(session))
    monkeypatch.setattr(session, "commit", lambda: pytest.fail("committed a failed request"))

    with pytest.raises(RuntimeError):
        await dependency.athrow(RuntimeError("boom"))

    assert rollbacks == [session]


async def test_a_write_committed_by_its_endpoint_is_not_committed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dependency, session = await enter("POST")
    session.begin()
    db.commit_in_this_thread(session)
    monkeypatch.setattr(session, "commit", lambda: pytest.fail("committed twice"))

    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    assert not session.in_transaction()


async def test_a_failing_commit_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    dependency, session = await enter("PATCH")
    session.begin()

    def fail() -> None:
        raise RuntimeError("commit failed")

    monkeypatch.setattr(session, "commit", fail)

    with pytest.raises(RuntimeError, match="commit failed"):
        await anext(dependency)
