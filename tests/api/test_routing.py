"""DatabaseRoute runs a sync endpoint in the process's thread pool, admits only requests that use
the session, and still validates what the endpoint returns; nothing the app serves uses AnyIO's
thread pool."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.routing import DatabaseRoute
from app.api.unit_of_work import get_session
from tests.api.contract import ITEMS, ME, TOKEN, USERS
from tests.factories import DEFAULT_PASSWORD as PASSWORD


class CountingSlots(asyncio.Semaphore):
    def __init__(self) -> None:
        super().__init__(1)
        self.admitted = 0

    async def __aenter__(self) -> None:
        self.admitted += 1
        await super().__aenter__()


class Public(BaseModel):
    name: str


@pytest.fixture
def endpoint_threads() -> list[str]:
    return []


@pytest.fixture
def slots() -> CountingSlots:
    return CountingSlots()


@pytest.fixture
def client(endpoint_threads: list[str], slots: CountingSlots) -> Iterator[TestClient]:
    async def no_session() -> AsyncIterator[Session]:
        yield Session()

    SessionDep = Annotated[Session, Depends(get_session)]
    router = APIRouter(route_class=DatabaseRoute)

    @router.post("/things", response_model=Public)
    def create_thing(session: SessionDep) -> dict[str, str]:
        endpoint_threads.append(threading.current_thread().name)
        return {"name": "thing", "secret": "never shown"}

    @router.get("/plain")
    async def plain() -> dict[str, str]:
        return {"status": "ok"}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database_slots = slots
        yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    app.dependency_overrides[get_session] = no_session
    with TestClient(app) as test_client:
        yield test_client


def test_a_sync_endpoint_runs_in_the_process_thread_pool(
    client: TestClient, endpoint_threads: list[str]
) -> None:
    response = client.post("/things")

    assert response.status_code == 200
    (thread_name,) = endpoint_threads
    assert thread_name.startswith("blocking")


def test_the_return_value_is_still_validated_against_the_response_model(
    client: TestClient,
) -> None:
    response = client.post("/things")

    assert response.json() == {"name": "thing"}


def test_only_a_route_that_uses_the_session_waits_for_admission(
    client: TestClient, slots: CountingSlots
) -> None:
    client.get("/plain")
    assert slots.admitted == 0

    client.post("/things")
    assert slots.admitted == 1


@pytest.fixture
def without_anyio_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("AnyIO's thread pool was used")

    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)


@pytest.mark.usefixtures("without_anyio_threads")
def test_no_request_uses_anyio_thread_pool(committing_client: TestClient) -> None:
    client = committing_client
    assert (
        client.post(
            USERS, json={"email": "pool@example.com", "username": "pool", "password": PASSWORD}
        ).status_code
        == 201
    )
    login = client.post(TOKEN, data={"username": "pool@example.com", "password": PASSWORD})
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = client.post(ITEMS, json={"title": "pooled"}, headers=headers)
    assert created.status_code == 201
    item = f"{ITEMS}/{created.json()['id']}"

    assert client.get(item, headers=headers).status_code == 200
    assert client.get(ITEMS, headers=headers).status_code == 200
    assert client.get(ME, headers=headers).status_code == 200
    assert client.patch(item, json={"title": "changed"}, headers=headers).status_code == 200
    assert client.delete(item, headers=headers).status_code == 204
    for probe in ("/health", "/health/ready", "/metrics"):
        assert client.get(probe).status_code == 200
