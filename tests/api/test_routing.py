"""ContractRoute runs a sync endpoint and its commit in one worker thread, and still validates
what the endpoint returns."""

import threading
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.routing import ContractRoute


class RecordingSession(Session):
    """A session with an open transaction that records the thread it is committed in."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = True
        self.commit_threads: list[int] = []

    def in_transaction(self) -> bool:
        return self.pending

    def commit(self) -> None:
        self.commit_threads.append(threading.get_ident())
        self.pending = False


class Public(BaseModel):
    name: str


@pytest.fixture
def session() -> RecordingSession:
    return RecordingSession()


@pytest.fixture
def endpoint_threads() -> list[int]:
    return []


@pytest.fixture
def client(session: RecordingSession, endpoint_threads: list[int]) -> Iterator[TestClient]:
    def get_session() -> Iterator[Session]:
        yield session

    SessionDep = Annotated[Session, Depends(get_session)]
    router = APIRouter(route_class=ContractRoute)

    @router.post("/things", response_model=Public)
    def create_thing(session: SessionDep) -> dict[str, str]:
        endpoint_threads.append(threading.get_ident())
        return {"name": "thing", "secret": "never shown"}

    @router.post("/failing")
    def fail(session: SessionDep) -> None:
        raise RuntimeError("endpoint failed")

    app = FastAPI()
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_sync_endpoint_is_committed_in_its_own_worker_thread(
    client: TestClient, session: RecordingSession, endpoint_threads: list[int]
) -> None:
    response = client.post("/things")

    assert response.status_code == 200
    (endpoint_thread,) = endpoint_threads
    assert endpoint_thread != threading.get_ident()
    assert session.commit_threads == [endpoint_thread]


def test_the_return_value_is_still_validated_against_the_response_model(
    client: TestClient,
) -> None:
    response = client.post("/things")

    assert response.json() == {"name": "thing"}


def test_a_failing_endpoint_commits_nothing(client: TestClient, session: RecordingSession) -> None:
    response = client.post("/failing")

    assert response.status_code == 500
    assert session.commit_threads == []
