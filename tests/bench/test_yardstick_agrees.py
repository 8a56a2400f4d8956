"""The yardstick (bench/yardstick_app.py) answers the benchmarked requests as the app does: same
status, same JSON body, same ETag and Location. The bench divides the app's throughput and CPU
by the yardstick's, so a yardstick that did less work (a missing check, a lighter body) would
flatter the ratio. Both run in-process on the test database, with real commits; the tables are
emptied afterwards."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.roles import Role
from bench import yardstick_app
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_item, make_user

ITEMS = "/api/v1/items"
TOKEN = "/api/v1/auth/token"
# What differs between two creations of the same item.
PER_CREATION = frozenset({"id", "created_at", "updated_at"})
# Headers the app sets for these requests besides its request id.
SHARED_HEADERS = (
    "content-type",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "content-security-policy",
)


@pytest.fixture
def yardstick(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The yardstick on the test database."""
    monkeypatch.setattr(yardstick_app, "DATABASE_URL", engine.url.render_as_string(False))
    yardstick_app.database.cache_clear()
    try:
        with TestClient(yardstick_app.app) as client:
            yield client
    finally:
        # It keeps a connection per thread: end the threads, and with them those.
        yardstick_app.executor().shutdown()
        yardstick_app.executor.cache_clear()
        yardstick_app.database.cache_clear()


@dataclass(frozen=True)
class Seeded:
    owner_email: str
    owner_headers: dict[str, str]
    admin_headers: dict[str, str]
    foreign_item_id: int  # someone else's item, which the owner may not see


@pytest.fixture
def seeded(committing_sessions: sessionmaker[Session]) -> Seeded:
    with committing_sessions.begin() as session:
        owner, someone_else = make_user(session), make_user(session)
        admin = make_user(session, role=Role.ADMIN)
        for n in range(25):
            make_item(session, owner=owner, title=f'Ünïcode "quoted" {n}', description=None)
        make_item(session, owner=owner, title="described", description="line\nbreak")
        foreign = make_item(session, owner=someone_else)
        return Seeded(owner.email, auth_headers(owner), auth_headers(admin), foreign.id)


def _both(
    app: TestClient, yardstick: TestClient, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    return app.request(method, url, **kwargs), yardstick.request(method, url, **kwargs)


def _assert_alike(app: httpx.Response, yardstick: httpx.Response, *headers: str) -> None:
    assert yardstick.status_code == app.status_code
    assert yardstick.json() == app.json()
    for name in (*SHARED_HEADERS, *headers):
        assert yardstick.headers.get(name) == app.headers.get(name), name


def test_item_get_is_answered_alike(
    committing_client: TestClient, yardstick: TestClient, seeded: Seeded
) -> None:
    page = committing_client.get(ITEMS, headers=seeded.owner_headers).json()
    for item in page["items"][:3]:
        app, ours = _both(
            committing_client,
            yardstick,
            "GET",
            f"{ITEMS}/{item['id']}",
            headers=seeded.owner_headers,
        )
        assert app.status_code == 200
        _assert_alike(app, ours, "etag")


def test_someone_elses_item_is_missing_for_both(
    committing_client: TestClient, yardstick: TestClient, seeded: Seeded
) -> None:
    url = f"{ITEMS}/{seeded.foreign_item_id}"
    app, ours = _both(committing_client, yardstick, "GET", url, headers=seeded.owner_headers)
    assert (app.status_code, ours.status_code) == (404, 404)
    # An admin sees it, from both.
    app, ours = _both(committing_client, yardstick, "GET", url, headers=seeded.admin_headers)
    assert app.status_code == 200
    _assert_alike(app, ours, "etag")


@pytest.mark.parametrize("caller", ["owner", "admin"])
def test_item_list_is_answered_alike(
    committing_client: TestClient, yardstick: TestClient, seeded: Seeded, caller: str
) -> None:
    headers = seeded.owner_headers if caller == "owner" else seeded.admin_headers
    for page in (1, 3, 4):  # 4: past the last page, where the total needs its own count
        url = f"{ITEMS}?page={page}&page_size=10"
        app, ours = _both(committing_client, yardstick, "GET", url, headers=headers)
        assert app.status_code == 200
        assert app.json()["total"] == (26 if caller == "owner" else 27)
        _assert_alike(app, ours)


def test_item_create_is_answered_alike(
    committing_client: TestClient, yardstick: TestClient, seeded: Seeded
) -> None:
    body = {"title": "Bench ünïcode", "description": "Created by the load benchmark"}
    app, ours = _both(
        committing_client, yardstick, "POST", ITEMS, headers=seeded.owner_headers, json=body
    )
    assert (app.status_code, ours.status_code) == (201, 201)
    created = ours.json()
    assert {k: v for k, v in created.items() if k not in PER_CREATION} == {
        k: v for k, v in app.json().items() if k not in PER_CREATION
    }
    assert app.headers["location"] == f"{ITEMS}/{app.json()['id']}"
    assert ours.headers["location"] == f"{ITEMS}/{created['id']}"
    for name in SHARED_HEADERS:
        assert ours.headers.get(name) == app.headers.get(name), name
    # The row is there, as the app reads it: the yardstick committed before answering.
    stored = committing_client.get(ours.headers["location"], headers=seeded.owner_headers)
    assert stored.json() == created


def test_login_is_answered_alike(
    committing_client: TestClient, yardstick: TestClient, seeded: Seeded
) -> None:
    form = {"username": seeded.owner_email.upper(), "password": DEFAULT_PASSWORD}
    app, ours = _both(committing_client, yardstick, "POST", TOKEN, data=form)
    assert (app.status_code, ours.status_code) == (200, 200)
    assert ours.json().keys() == app.json().keys()
    assert {k: v for k, v in ours.json().items() if k != "access_token"} == {
        k: v for k, v in app.json().items() if k != "access_token"
    }
    for name in (*SHARED_HEADERS, "cache-control"):
        assert ours.headers.get(name) == app.headers.get(name), name
    # Each accepts the other's token: the same claims under the same key.
    for token, client in ((ours, committing_client), (app, yardstick)):
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get(ITEMS, headers=bearer).status_code == 200
    wrong = {"username": seeded.owner_email, "password": "not the password"}
    app, ours = _both(committing_client, yardstick, "POST", TOKEN, data=wrong)
    assert (app.status_code, ours.status_code) == (401, 401)


def test_a_refused_token_is_refused_by_both(
    committing_client: TestClient, yardstick: TestClient, seeded: Seeded
) -> None:
    bad = {"Authorization": seeded.owner_headers["Authorization"][:-2] + "xx"}
    app, ours = _both(committing_client, yardstick, "GET", ITEMS, headers=bad)
    # The yardstick checks the token too; the bench sends no bad requests, so the problem
    # bodies and challenges of refusals are not compared.
    assert (app.status_code, ours.status_code) == (401, 401)
