"""The benchmark's comparison servers answer the benchmarked requests as the app does, so the
bench's ratios compare the same work (bench/README.md, "The cost ladder"). Each server runs
in-process on the test database, with real commits; the tables are emptied afterwards."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import AUTOCOMMIT_OPTION
from bench import baseline_app, floor_app, framework_baseline_app
from tests.factories import auth_headers, make_item, make_user

ITEMS = "/api/v1/items"
SERVER_NAMES = ("baseline", "framework", "floor")
# What differs between two creations of the same item.
PER_CREATION = frozenset({"id", "created_at", "updated_at"})


@pytest.fixture
def servers(
    engine: Engine,
    committing_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, TestClient]]:
    """The comparison servers on the test database."""
    monkeypatch.setattr(baseline_app, "DATABASE_URL", engine.url.render_as_string(False))
    baseline_app.database.cache_clear()
    read_only = sessionmaker(
        engine.execution_options(**{AUTOCOMMIT_OPTION: True}), expire_on_commit=False
    )
    monkeypatch.setattr(floor_app, "ReadOnlySessionLocal", read_only)
    monkeypatch.setattr(floor_app, "SessionLocal", committing_sessions)
    try:
        with (
            TestClient(baseline_app.app) as baseline,
            TestClient(framework_baseline_app.app) as framework,
            TestClient(floor_app.app) as floor,
        ):
            yield {"baseline": baseline, "framework": framework, "floor": floor}
    finally:
        # The baseline keeps a connection per thread: end the threads, and with them those.
        baseline_app._executor().shutdown()
        baseline_app._executor.cache_clear()
        baseline_app.database.cache_clear()


@dataclass(frozen=True)
class Seeded:
    owner_headers: dict[str, str]
    foreign_item_id: int  # someone else's item, which the owner may not see


@pytest.fixture
def seeded(committing_sessions: sessionmaker[Session]) -> Seeded:
    with committing_sessions.begin() as session:
        owner, someone_else = make_user(session), make_user(session)
        for n in range(25):
            make_item(session, owner=owner, title=f'Ünïcode "quoted" {n}', description=None)
        make_item(session, owner=owner, title="described", description="line\nbreak")
        foreign = make_item(session, owner=someone_else)
        return Seeded(auth_headers(owner), foreign.id)


def _responses(
    committing_client: TestClient,
    servers: dict[str, TestClient],
    method: str,
    url: str,
    **kwargs: Any,
) -> tuple[httpx.Response, dict[str, httpx.Response]]:
    app = committing_client.request(method, url, **kwargs)
    return app, {name: servers[name].request(method, url, **kwargs) for name in SERVER_NAMES}


def test_item_get_is_answered_alike(
    committing_client: TestClient, servers: dict[str, TestClient], seeded: Seeded
) -> None:
    page = committing_client.get(ITEMS, headers=seeded.owner_headers).json()
    for item in page["items"][:3]:
        url = f"{ITEMS}/{item['id']}"
        app, others = _responses(
            committing_client, servers, "GET", url, headers=seeded.owner_headers
        )
        assert app.status_code == 200
        for name, response in others.items():
            assert response.status_code == 200, name
            assert response.json() == app.json(), name
        # The floor leaves conditional requests out (what app/floor measures).
        for name in ("baseline", "framework"):
            assert others[name].headers["etag"] == app.headers["etag"], name
            assert others[name].headers["content-type"] == app.headers["content-type"], name


def test_someone_elses_item_is_missing_for_every_server(
    committing_client: TestClient, servers: dict[str, TestClient], seeded: Seeded
) -> None:
    url = f"{ITEMS}/{seeded.foreign_item_id}"
    app, others = _responses(committing_client, servers, "GET", url, headers=seeded.owner_headers)
    assert app.status_code == 404
    assert {name: response.status_code for name, response in others.items()} == dict.fromkeys(
        SERVER_NAMES, 404
    )


def test_item_list_is_answered_alike(
    committing_client: TestClient, servers: dict[str, TestClient], seeded: Seeded
) -> None:
    for page in (1, 2, 3):
        url = f"{ITEMS}?page={page}&page_size=10"
        app, others = _responses(
            committing_client, servers, "GET", url, headers=seeded.owner_headers
        )
        assert app.status_code == 200
        assert app.json()["total"] == 26
        for name, response in others.items():
            assert response.status_code == 200, name
            assert response.json() == app.json(), name


def test_item_create_is_answered_alike(
    committing_client: TestClient, servers: dict[str, TestClient], seeded: Seeded
) -> None:
    body = {"title": "Bench ünïcode", "description": "Created by the load benchmark"}
    app, others = _responses(
        committing_client, servers, "POST", ITEMS, headers=seeded.owner_headers, json=body
    )
    assert app.status_code == 201
    expected = {key: value for key, value in app.json().items() if key not in PER_CREATION}
    for name, response in others.items():
        assert response.status_code == 201, name
        created = response.json()
        assert {k: v for k, v in created.items() if k not in PER_CREATION} == expected, name
        assert response.headers["location"] == f"{ITEMS}/{created['id']}", name
        # The row is there: the servers committed before answering.
        stored = committing_client.get(response.headers["location"], headers=seeded.owner_headers)
        assert stored.json() == created, name


def test_a_refused_token_is_refused_by_every_server(
    servers: dict[str, TestClient], seeded: Seeded
) -> None:
    bad = {"Authorization": seeded.owner_headers["Authorization"][:-2] + "xx"}
    for name, client in servers.items():
        assert client.get(ITEMS, headers=bad).status_code == 401, name
