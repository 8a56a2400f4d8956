"""The read cache (CACHE_URL) as clients see it: repeated list pages are served from Redis,
every write is seen by the next read, nobody is served another caller's rows, and an
unreachable Redis changes nothing but the speed.

The whole of tests/api also runs with the cache on (TEST_CACHE_URL, make test); these tests
turn it on themselves and check what that run cannot: that the cache was used at all.
"""

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.read_cache import get_read_cache
from app.models import User
from tests.api.contract import ITEMS, USERS
from tests.conftest import empty_read_cache, read_cache_url
from tests.factories import auth_headers, make_item, make_user


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("read_cache_lookups_total", {"result": result}) or 0.0


@pytest.fixture
def cache_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The read cache on, empty, on the test Redis."""
    empty_read_cache(read_cache_url())
    monkeypatch.setenv("CACHE_URL", read_cache_url())
    get_settings.cache_clear()
    get_read_cache.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    get_read_cache.cache_clear()


@pytest.fixture
def counted() -> Callable[[], dict[str, float]]:
    """Lookups by result since the fixture was made."""
    start = {result: lookups(result) for result in ("hit", "miss", "unavailable")}
    return lambda: {result: lookups(result) - before for result, before in start.items()}


pytestmark = pytest.mark.usefixtures("cache_on")


def titles(client: TestClient, headers: dict[str, str], owner: str = "") -> list[str]:
    """The titles of the caller's first page, newest first (always the same query, so a
    stale cached page would be served for it)."""
    response = client.get(f"{ITEMS}?sort=-id{owner}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


def test_a_repeated_page_is_served_from_the_cache(
    client: TestClient, session: Session, user: User, counted: Callable[[], dict[str, float]]
) -> None:
    make_item(session, owner=user, title="first")
    headers = auth_headers(user)

    first = client.get(ITEMS, headers=headers)
    again = client.get(ITEMS, headers=headers)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["total"] == 1
    assert counted() == {"hit": 1, "miss": 1, "unavailable": 0}


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda c, h, _id: c.post(ITEMS, json={"title": "new"}, headers=h), ["new", "kept"]),
        (
            lambda c, h, item_id: c.patch(
                f"{ITEMS}/{item_id}", json={"title": "renamed"}, headers=h
            ),
            ["renamed"],
        ),
        (lambda c, h, item_id: c.delete(f"{ITEMS}/{item_id}", headers=h), []),
    ],
    ids=["create", "update", "delete"],
)
def test_every_item_write_is_seen_by_the_next_list(
    client: TestClient,
    session: Session,
    user: User,
    write: Callable[[TestClient, dict[str, str], int], object],
    expected: list[str],
) -> None:
    item = make_item(session, owner=user, title="kept")
    headers = auth_headers(user)
    assert titles(client, headers) == ["kept"]  # now cached

    write(client, headers, item.id)

    assert titles(client, headers) == expected


def test_an_owners_write_is_seen_by_an_admins_lists(
    client: TestClient, session: Session, user: User, admin: User
) -> None:
    make_item(session, owner=user, title="kept")
    admin_headers = auth_headers(admin)
    assert titles(client, admin_headers) == ["kept"]
    assert titles(client, admin_headers, f"&owner_id={user.id}") == ["kept"]

    client.post(ITEMS, json={"title": "new"}, headers=auth_headers(user))

    assert titles(client, admin_headers) == ["new", "kept"]
    assert titles(client, admin_headers, f"&owner_id={user.id}") == ["new", "kept"]


def test_a_deleted_users_items_leave_the_admins_list(
    client: TestClient, session: Session, user: User, admin: User
) -> None:
    make_item(session, owner=user, title="theirs")
    admin_headers = auth_headers(admin)
    assert titles(client, admin_headers) == ["theirs"]

    assert client.delete(f"{USERS}/{user.id}", headers=admin_headers).status_code == 204

    assert titles(client, admin_headers) == []


def test_the_same_query_by_two_owners_gets_each_their_own_rows(
    client: TestClient, session: Session, user: User, other_user: User
) -> None:
    make_item(session, owner=user, title="mine")
    make_item(session, owner=other_user, title="theirs")

    for _ in range(2):  # the second round is served from the cache
        assert titles(client, auth_headers(user)) == ["mine"]
        assert titles(client, auth_headers(other_user)) == ["theirs"]


def test_user_list_sees_sign_ups_and_changes_made_without_a_transaction(
    client: TestClient, session: Session, admin: User
) -> None:
    """PATCH /users/me runs in autocommit (it checks a password): its write is published at
    once, not at a commit that never comes."""
    member = make_user(session, email="member@example.com", password="password123")
    admin_headers = auth_headers(admin)

    def emails() -> set[str]:
        response = client.get(USERS, headers=admin_headers)
        assert response.status_code == 200, response.text
        return {user["email"] for user in response.json()["items"]}

    assert emails() == {admin.email, "member@example.com"}
    signed_up = client.post(
        USERS, json={"email": "new@example.com", "username": "newbie", "password": "password123"}
    )
    assert signed_up.status_code == 201
    assert emails() == {admin.email, "member@example.com", "new@example.com"}

    changed = client.patch(
        f"{USERS}/me",
        json={"email": "moved@example.com", "current_password": "password123"},
        headers=auth_headers(member),
    )
    assert changed.status_code == 200, changed.text
    assert emails() == {admin.email, "moved@example.com", "new@example.com"}


def test_a_refused_write_leaves_the_cached_page_in_place(
    client: TestClient, admin: User, counted: Callable[[], dict[str, float]]
) -> None:
    admin_headers = auth_headers(admin)
    client.get(USERS, headers=admin_headers)
    duplicate = {"email": admin.email, "username": "someone", "password": "password123"}

    assert client.post(USERS, json=duplicate).status_code == 409
    client.get(USERS, headers=admin_headers)

    assert counted()["hit"] == 1


def test_an_unreachable_cache_only_costs_speed(
    client: TestClient,
    session: Session,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    counted: Callable[[], dict[str, float]],
) -> None:
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    get_settings.cache_clear()
    get_read_cache.cache_clear()
    make_item(session, owner=user, title="kept")
    headers = auth_headers(user)

    assert titles(client, headers) == ["kept"]
    assert client.post(ITEMS, json={"title": "new"}, headers=headers).status_code == 201
    assert titles(client, headers) == ["new", "kept"]
    assert counted() == {"hit": 0, "miss": 0, "unavailable": 2}
