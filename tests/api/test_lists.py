"""The list endpoints, GET /api/v1/items and GET /api/v1/users (admin): paging, search, sort,
filters and query validation, as API.md promises them.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Item, User
from tests.api.contract import ITEMS, USERS
from tests.factories import auth_headers, make_item, make_user

PAGE_KEYS = {"items", "total", "page", "page_size", "pages"}
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def boss(session: Session) -> User:
    """An admin whose email, username and name match none of the searches below."""
    return make_user(session, email="boss@corp.test", username="boss", role="admin")


@pytest.fixture
def boss_headers(boss: User) -> dict[str, str]:
    return auth_headers(boss)


@dataclass
class Listing:
    """One list endpoint as seen by one caller."""

    path: str
    headers: dict[str, str]
    model: type[Item] | type[User]
    add_row: Callable[[int], int]  # makes the n-th row; returns its id
    visible_ids: Callable[[], set[int]]
    stamp: Callable[[int, datetime, datetime], None]  # sets a row's created_at, updated_at
    tie_sorts: tuple[str, ...]  # sorts on keys that many rows share


def _set_times(model: type[Item] | type[User], session: Session) -> Callable[..., None]:
    def stamp(row_id: int, created_at: datetime, updated_at: datetime) -> None:
        row = session.get(model, row_id)
        assert row is not None
        row.created_at, row.updated_at = created_at, updated_at
        session.flush()

    return stamp


@pytest.fixture(params=["items", "users"])
def listing(
    request: pytest.FixtureRequest,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    boss_headers: dict[str, str],
) -> Listing:
    if request.param == "items":
        return Listing(
            path=ITEMS,
            headers=user_headers,
            model=Item,
            # Many rows share a title: only the id can break those ties.
            add_row=lambda n: make_item(session, owner=user, title=f"shared {n % 3}").id,
            visible_ids=lambda: set(
                session.scalars(select(Item.id).where(Item.owner_id == user.id))
            ),
            stamp=_set_times(Item, session),
            tie_sorts=("title", "-title", "title,-updated_at"),
        )
    return Listing(
        path=USERS,
        headers=boss_headers,
        model=User,
        add_row=lambda n: make_user(session, username=f"member{n}").id,
        visible_ids=lambda: set(session.scalars(select(User.id))),
        stamp=_set_times(User, session),
        tie_sorts=("-updated_at", "updated_at,-created_at"),
    )


def seed(listing: Listing, count: int) -> None:
    """``count`` rows, four at a time sharing one created_at and updated_at (ties)."""
    for n in range(count):
        row_id = listing.add_row(n)
        moment = BASE_TIME + timedelta(minutes=n // 4)
        listing.stamp(row_id, moment, moment)


def get_page(client: TestClient, listing: Listing, **params: Any) -> Response:
    return client.get(listing.path, params=params, headers=listing.headers)


def ids_of(response: Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["items"]]


def walk(client: TestClient, listing: Listing, page_size: int, **params: Any) -> list[int]:
    """Every id, page after page, until a page comes back empty."""
    seen: list[int] = []
    for page in range(1, 1000):
        ids = ids_of(get_page(client, listing, page=page, page_size=page_size, **params))
        if not ids:
            return seen
        seen.extend(ids)
    raise AssertionError("paging never ended")


def assert_query_error(response: Response, name: str) -> None:
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [error["loc"] for error in errors] == [["query", name]]
    assert all(set(error) == {"loc", "msg", "type"} for error in errors)


# --- page shape and arithmetic --------------------------------------------------------------


def test_list_returns_page_shape(client: TestClient, session: Session, listing: Listing) -> None:
    seed(listing, 3)

    response = get_page(client, listing, page=1, page_size=2)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PAGE_KEYS
    assert (body["page"], body["page_size"]) == (1, 2)
    assert body["total"] == len(listing.visible_ids())
    assert len(body["items"]) == 2


def test_list_defaults_to_first_page_of_20(
    client: TestClient, session: Session, listing: Listing
) -> None:
    seed(listing, 21)

    response = get_page(client, listing)

    body = response.json()
    assert (body["page"], body["page_size"], len(body["items"])) == (1, 20, 20)


@pytest.mark.parametrize(
    ("rows", "page_size"), [(0, 5), (1, 5), (5, 5), (6, 5), (11, 5), (11, 100), (100, 100)]
)
def test_item_pages_is_total_over_page_size_rounded_up(
    client: TestClient,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    rows: int,
    page_size: int,
) -> None:
    for _ in range(rows):
        make_item(session, owner=user)

    response = client.get(ITEMS, params={"page_size": page_size}, headers=user_headers)

    assert (response.json()["total"], response.json()["pages"]) == (
        rows,
        math.ceil(rows / page_size),
    )


def test_item_list_without_rows_has_zero_pages(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.get(ITEMS, headers=user_headers)

    assert response.json() == {"items": [], "total": 0, "page": 1, "page_size": 20, "pages": 0}


def test_user_pages_is_total_over_page_size_rounded_up(
    client: TestClient, session: Session, boss_headers: dict[str, str]
) -> None:
    for _ in range(6):
        make_user(session)

    response = client.get(USERS, params={"page_size": 3}, headers=boss_headers)

    assert (response.json()["total"], response.json()["pages"]) == (7, 3)


@pytest.mark.parametrize("past_end", ["next", "last-allowed"])
def test_page_past_the_end_is_empty_with_the_right_total(
    client: TestClient, session: Session, listing: Listing, past_end: str
) -> None:
    seed(listing, 3)
    total = len(listing.visible_ids())
    pages = math.ceil(total / 2)
    page = pages + 1 if past_end == "next" else 100_000

    response = get_page(client, listing, page=page, page_size=2)

    assert response.status_code == 200
    assert response.json() == {
        "items": [],
        "total": total,
        "page": page,
        "page_size": 2,
        "pages": pages,
    }


# --- walking every page ---------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 3, 4, 7, 100])
@pytest.mark.parametrize("sort", [None, "created_at", "-created_at", "id", "-id", "tie"])
def test_walking_every_page_yields_each_row_exactly_once(
    client: TestClient, session: Session, listing: Listing, sort: str | None, page_size: int
) -> None:
    seed(listing, 11)
    sorts = listing.tie_sorts if sort == "tie" else (sort,)

    for sort_param in sorts:
        params = {} if sort_param is None else {"sort": sort_param}
        walked = walk(client, listing, page_size, **params)

        assert len(walked) == len(set(walked))
        assert set(walked) == listing.visible_ids()
        assert walked == ids_of(get_page(client, listing, page_size=100, **params))


# --- sort -----------------------------------------------------------------------------------

# Values deliberately out of id order: sorting by id would not give the same result.
NAMES = ["delta", "alpha", "echo", "charlie", "bravo"]
CREATED = [3, 1, 4, 0, 2]
UPDATED = [2, 4, 0, 3, 1]


def _sorted_ids(rows: list[dict[str, Any]], key: str, descending: bool) -> list[int]:
    """ids ordered by ``key`` (ties by ascending id, as the service promises)."""
    by_id = sorted(rows, key=lambda row: row["id"])
    return [row["id"] for row in sorted(by_id, key=lambda row: row[key], reverse=descending)]


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("key", ["id", "title", "created_at", "updated_at"])
def test_items_sort_by_each_allowed_key(
    client: TestClient,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    key: str,
    descending: bool,
) -> None:
    rows = []
    for name, created, updated in zip(NAMES, CREATED, UPDATED, strict=True):
        item = make_item(session, owner=user, title=name)
        item.created_at = BASE_TIME + timedelta(minutes=created)
        item.updated_at = BASE_TIME + timedelta(minutes=updated)
        session.flush()
        rows.append({"id": item.id, "title": name, "created_at": created, "updated_at": updated})
    sort = f"-{key}" if descending else key

    response = client.get(ITEMS, params={"sort": sort}, headers=user_headers)

    assert ids_of(response) == _sorted_ids(rows, key, descending)


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("key", ["id", "email", "username", "created_at", "updated_at"])
def test_users_sort_by_each_allowed_key(
    client: TestClient, session: Session, key: str, descending: bool
) -> None:
    rows = []
    members = []
    for n, (name, created, updated) in enumerate(zip(NAMES, CREATED, UPDATED, strict=True)):
        role = "admin" if n == 0 else "user"
        member = make_user(session, email=f"{name}@example.com", username=name, role=role)
        members.append(member)
        member.created_at = BASE_TIME + timedelta(minutes=created)
        member.updated_at = BASE_TIME + timedelta(minutes=updated)
        session.flush()
        rows.append(
            {
                "id": member.id,
                "email": member.email,
                "username": name,
                "created_at": created,
                "updated_at": updated,
            }
        )
    admin_headers = auth_headers(members[0])
    sort = f"-{key}" if descending else key

    response = client.get(USERS, params={"sort": sort}, headers=admin_headers)

    assert ids_of(response) == _sorted_ids(rows, key, descending)


def test_ties_in_a_sort_key_are_broken_by_ascending_id(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    items = [make_item(session, owner=user, title="same") for _ in range(4)]
    items[0].description = "moved"  # PostgreSQL now stores it last: storage order is not id order
    session.flush()

    response = client.get(ITEMS, params={"sort": "-title"}, headers=user_headers)

    assert ids_of(response) == sorted(item.id for item in items)


def test_later_sort_keys_order_rows_tied_on_earlier_ones(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    b1 = make_item(session, owner=user, title="b").id
    a1 = make_item(session, owner=user, title="a").id
    b2 = make_item(session, owner=user, title="b").id
    a2 = make_item(session, owner=user, title="a").id

    response = client.get(ITEMS, params={"sort": "title,-id"}, headers=user_headers)

    assert ids_of(response) == [a2, a1, b2, b1]


def test_default_sort_is_newest_first_then_highest_id(
    client: TestClient, session: Session, listing: Listing
) -> None:
    seed(listing, 9)  # created_at ties in groups of four
    created = dict(session.execute(select(listing.model.id, listing.model.created_at)).all())
    expected = sorted(
        listing.visible_ids(), key=lambda row_id: (created[row_id], row_id), reverse=True
    )

    response = get_page(client, listing, page_size=100)

    assert ids_of(response) == expected


# --- query validation -----------------------------------------------------------------------

COMMON_BAD_QUERIES = [
    ("page", "0"),
    ("page", "-1"),
    ("page", "100001"),
    ("page", "abc"),
    ("page_size", "0"),
    ("page_size", "101"),
    ("page_size", "abc"),
    ("q", "q" * 101),
    ("q", "nul\x00"),
    ("sort", "nope"),
    ("sort", "-"),
    ("sort", "--id"),
    ("sort", "id,-id"),
    ("sort", "created_at,created_at"),
    ("sort", "id,created_at,updated_at,-id"),
    ("sort", "description"),
]


@pytest.mark.parametrize(("name", "value"), COMMON_BAD_QUERIES)
def test_invalid_list_query_is_422_at_the_parameter(
    client: TestClient, listing: Listing, name: str, value: str
) -> None:
    response = get_page(client, listing, **{name: value})

    assert_query_error(response, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sort", "id,title,created_at,updated_at"),
        ("sort", "email"),
        ("sort", "owner_id"),
        ("owner_id", "0"),
        ("owner_id", str(2**31)),
        ("owner_id", "abc"),
    ],
)
def test_invalid_item_list_query_is_422_at_the_parameter(
    client: TestClient, boss_headers: dict[str, str], name: str, value: str
) -> None:
    response = client.get(ITEMS, params={name: value}, headers=boss_headers)

    assert_query_error(response, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sort", "id,email,username,created_at"),
        ("sort", "title"),
        ("sort", "hashed_password"),
        ("is_active", "maybe"),
        ("is_active", ""),
        ("role", "superuser"),
        ("role", "ADMIN "),
    ],
)
def test_invalid_user_list_query_is_422_at_the_parameter(
    client: TestClient, boss_headers: dict[str, str], name: str, value: str
) -> None:
    response = client.get(USERS, params={name: value}, headers=boss_headers)

    assert_query_error(response, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page", "100000"),
        ("page_size", "1"),
        ("page_size", "100"),
        ("q", "q" * 100),
        ("sort", "created_at,-updated_at,id"),
        ("sort", "-id"),
    ],
)
def test_list_query_accepts_boundary_values(
    client: TestClient, session: Session, listing: Listing, name: str, value: str
) -> None:
    seed(listing, 2)

    response = get_page(client, listing, **{name: value})

    assert response.status_code == 200


def test_unknown_query_parameters_are_ignored(
    client: TestClient, session: Session, listing: Listing
) -> None:
    seed(listing, 3)
    plain = get_page(client, listing, page_size=2)

    response = get_page(client, listing, page_size=2, colour="blue", limit="1", offset="5")

    assert response.status_code == 200
    assert response.json() == plain.json()


# --- search ---------------------------------------------------------------------------------


def test_item_search_is_case_insensitive_over_title_and_description(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    by_title = make_item(session, owner=user, title="Buy MILK")
    by_description = make_item(session, owner=user, title="shop", description="Oat milky drink")
    make_item(session, owner=user, title="bread", description="rye")

    response = client.get(ITEMS, params={"q": "mIlK"}, headers=user_headers)

    assert set(ids_of(response)) == {by_title.id, by_description.id}
    assert response.json()["total"] == 2


@pytest.mark.parametrize(
    ("q", "title"), [("école", "ÉCOLE"), ("ÉCOLE", "école"), ("ΣΟΦΊΑ", "σοφία")]
)
def test_item_search_folds_case_beyond_ascii(
    client: TestClient,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    q: str,
    title: str,
) -> None:
    hit = make_item(session, owner=user, title=f"La {title} du village")
    make_item(session, owner=user, title="village")

    response = client.get(ITEMS, params={"q": q}, headers=user_headers)

    assert ids_of(response) == [hit.id]


def test_item_search_sees_only_the_callers_items(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    user_headers: dict[str, str],
) -> None:
    mine = make_item(session, owner=user, title="milk")
    make_item(session, owner=other_user, title="milk")

    response = client.get(ITEMS, params={"q": "milk"}, headers=user_headers)

    assert ids_of(response) == [mine.id]


@pytest.mark.parametrize(
    ("q", "matching", "other"),
    [
        ("%", "100%", "abc"),
        ("0%", "100%", "1000"),
        ("_", "a_b", "ab"),
        ("a_b", "a_b", "axb"),
        ("/", "a/b", "ab"),
        ("\\", "a\\b", "ab"),
        ("[a]", "[a]", "a"),
    ],
)
def test_item_search_matches_wildcards_literally(
    client: TestClient,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    q: str,
    matching: str,
    other: str,
) -> None:
    hit = make_item(session, owner=user, title=matching)
    make_item(session, owner=user, title=other)

    response = client.get(ITEMS, params={"q": q}, headers=user_headers)

    assert ids_of(response) == [hit.id]


@pytest.mark.parametrize(
    ("fields", "q"),
    [
        ({"email": "Findme@Example.com"}, "FINDME"),
        ({"username": "FindMe_u"}, "findme"),
        ({"full_name": "Ada FINDME Lovelace"}, "fIndMe"),
    ],
    ids=["email", "username", "full_name"],
)
def test_user_search_is_case_insensitive_over_email_username_and_full_name(
    client: TestClient,
    session: Session,
    boss_headers: dict[str, str],
    fields: dict[str, str],
    q: str,
) -> None:
    hit = make_user(session, **fields)
    make_user(session, email="nobody@example.com", username="nobody", full_name="No Body")

    response = client.get(USERS, params={"q": q}, headers=boss_headers)

    assert ids_of(response) == [hit.id]


def test_user_search_folds_case_beyond_ascii_in_full_name(
    client: TestClient, session: Session, boss_headers: dict[str, str]
) -> None:
    hit = make_user(session, email="e@x.test", username="eee", full_name="Émile Zola")
    make_user(session, email="m@x.test", username="mmm", full_name="Mile End")

    response = client.get(USERS, params={"q": "émile"}, headers=boss_headers)

    assert ids_of(response) == [hit.id]


@pytest.mark.parametrize(
    ("q", "matching", "other"),
    [
        ("%", {"username": "pct", "full_name": "100%"}, {"username": "abc", "full_name": "abc"}),
        ("_", {"username": "a_b"}, {"username": "ab"}),
    ],
    ids=["percent", "underscore"],
)
def test_user_search_matches_wildcards_literally(
    client: TestClient,
    session: Session,
    boss_headers: dict[str, str],
    q: str,
    matching: dict[str, str],
    other: dict[str, str],
) -> None:
    hit = make_user(session, email=f"{matching['username']}@x.test", **matching)
    make_user(session, email=f"{other['username']}@x.test", **other)

    response = client.get(USERS, params={"q": q}, headers=boss_headers)

    assert ids_of(response) == [hit.id]


def test_empty_search_matches_everything(
    client: TestClient, session: Session, listing: Listing
) -> None:
    seed(listing, 3)

    response = get_page(client, listing, q="")

    assert set(ids_of(response)) == listing.visible_ids()


# --- who sees what --------------------------------------------------------------------------


def test_user_sees_only_own_items(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    user_headers: dict[str, str],
) -> None:
    mine = {make_item(session, owner=user).id for _ in range(2)}
    make_item(session, owner=other_user)

    response = client.get(ITEMS, headers=user_headers)

    assert set(ids_of(response)) == mine
    assert response.json()["total"] == 2


def test_admin_sees_everyones_items(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    boss: User,
    boss_headers: dict[str, str],
) -> None:
    everyone = {make_item(session, owner=owner).id for owner in (user, other_user, boss)}

    response = client.get(ITEMS, headers=boss_headers)

    assert set(ids_of(response)) == everyone
    assert response.json()["total"] == 3


def test_admin_filters_items_by_owner_id(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    boss_headers: dict[str, str],
) -> None:
    theirs = {make_item(session, owner=other_user).id for _ in range(2)}
    make_item(session, owner=user)

    response = client.get(ITEMS, params={"owner_id": other_user.id}, headers=boss_headers)

    assert set(ids_of(response)) == theirs
    assert response.json()["total"] == 2


def test_admin_filtering_by_owner_without_items_gets_an_empty_page(
    client: TestClient, session: Session, user: User, boss_headers: dict[str, str]
) -> None:
    make_item(session, owner=user)

    response = client.get(ITEMS, params={"owner_id": 2**31 - 1}, headers=boss_headers)

    assert response.json() == {"items": [], "total": 0, "page": 1, "page_size": 20, "pages": 0}


@pytest.mark.parametrize("whose", ["own", "other"])
def test_non_admin_sending_owner_id_is_403(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    user_headers: dict[str, str],
    whose: str,
) -> None:
    make_item(session, owner=other_user)
    owner_id = user.id if whose == "own" else other_user.id

    response = client.get(ITEMS, params={"owner_id": owner_id}, headers=user_headers)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "items" not in response.json()


def test_non_admin_cannot_list_users(client: TestClient, user_headers: dict[str, str]) -> None:
    response = client.get(USERS, headers=user_headers)

    assert response.status_code == 403


# --- user filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "active"), [("true", True), ("false", False), ("0", False)])
def test_users_filter_by_is_active(
    client: TestClient,
    session: Session,
    boss: User,
    boss_headers: dict[str, str],
    value: str,
    active: bool,
) -> None:
    inactive = make_user(session, is_active=False)
    expected = {boss.id} if active else {inactive.id}

    response = client.get(USERS, params={"is_active": value}, headers=boss_headers)

    assert set(ids_of(response)) == expected


@pytest.mark.parametrize("role", ["admin", "user"])
def test_users_filter_by_role(
    client: TestClient, session: Session, boss: User, boss_headers: dict[str, str], role: str
) -> None:
    member = make_user(session)
    expected = {boss.id} if role == "admin" else {member.id}

    response = client.get(USERS, params={"role": role}, headers=boss_headers)

    assert set(ids_of(response)) == expected
    assert response.json()["total"] == 1


def test_users_list_never_shows_password_hashes(
    client: TestClient, session: Session, boss_headers: dict[str, str]
) -> None:
    make_user(session)

    response = client.get(USERS, headers=boss_headers)

    assert {"hashed_password", "password"}.isdisjoint(response.json()["items"][0])
    assert "$2" not in response.text  # no bcrypt hash anywhere
