"""Truly concurrent requests against really committing sessions (SQLite and PostgreSQL): the
optimistic version check, the unique indexes and SQLite's write lock must turn races into
clean 200/201, 409 or 412 answers, never a 5xx, a lost update or "database is locked"."""

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.models import Item, User
from tests.api.contract import ITEMS, ME, USERS
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_item, make_user

# Generous bounds: a hung request (a deadlock, a lock never released) fails the test instead
# of hanging the suite. A healthy race finishes in well under a second.
START_TIMEOUT_S = 10
RACE_TIMEOUT_S = 60

Call = Callable[[], httpx.Response]


def race(calls: list[Call]) -> list[httpx.Response]:
    """Run ``calls`` on their own threads, released together, and return their responses in
    order; fail if any of them has not answered within RACE_TIMEOUT_S."""
    barrier = threading.Barrier(len(calls), timeout=START_TIMEOUT_S)

    def run(call: Call) -> httpx.Response:
        barrier.wait()
        return call()

    pool = ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="race")
    try:
        futures = [pool.submit(run, call) for call in calls]
        _, pending = wait(futures, timeout=RACE_TIMEOUT_S)
        assert not pending, f"{len(pending)} of {len(calls)} requests did not answer in time"
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


@pytest.fixture
def db(committing_sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session to arrange committed rows and to read back what the racers committed."""
    with committing_sessions() as session:
        yield session


def committed_user(db: Session) -> User:
    user = make_user(db)
    db.commit()
    return user


def committed_item(db: Session, owner: User, title: str = "original") -> Item:
    item = make_item(db, owner=owner, title=title)
    db.commit()
    return item


def users_with_email(db: Session, email: str) -> int:
    return db.scalar(select(func.count()).select_from(User).where(User.email == email)) or 0


def stored_item(db: Session, item_id: int) -> tuple[str, int]:
    db.expire_all()
    row = db.execute(select(Item.title, Item.version).where(Item.id == item_id)).one()
    return row.title, row.version


# --- concurrent PATCHes of one item -----------------------------------------------------------


@pytest.mark.parametrize("writers", [2, 8])
def test_patches_with_the_same_if_match_let_exactly_one_win(
    committing_client: TestClient, db: Session, writers: int
) -> None:
    owner = committed_user(db)
    item = committed_item(db, owner)
    url, version = f"{ITEMS}/{item.id}", item.version
    headers = auth_headers(owner)
    tag = committing_client.get(url, headers=headers).headers["ETag"]
    titles = [f"writer {n}" for n in range(writers)]

    responses = race(
        [
            partial(
                committing_client.patch,
                url,
                json={"title": title},
                headers={**headers, "If-Match": tag},
            )
            for title in titles
        ]
    )

    assert statuses(responses) == Counter({200: 1, 412: writers - 1})
    winner = next(title for title, r in zip(titles, responses, strict=True) if r.status_code == 200)
    assert stored_item(db, item.id) == (winner, version + 1)


def test_concurrent_patches_without_if_match_lose_no_update(
    committing_client: TestClient, db: Session
) -> None:
    owner = committed_user(db)
    item = committed_item(db, owner)
    url, version = f"{ITEMS}/{item.id}", item.version
    headers = auth_headers(owner)
    titles = [f"writer {n}" for n in range(8)]

    responses = race(
        [
            partial(committing_client.patch, url, json={"title": title}, headers=headers)
            for title in titles
        ]
    )

    assert set(statuses(responses)) <= {200, 409}
    accepted = [title for title, r in zip(titles, responses, strict=True) if r.status_code == 200]
    assert accepted
    title, new_version = stored_item(db, item.id)
    assert new_version == version + len(accepted)
    assert title in accepted


# --- uniqueness races -------------------------------------------------------------------------


def sign_up_calls(client: TestClient, bodies: list[dict[str, str]]) -> list[Call]:
    return [partial(client.post, USERS, json=body) for body in bodies]


def test_concurrent_sign_ups_with_one_email_create_one_user(
    committing_client: TestClient, db: Session
) -> None:
    bodies = [
        {"email": "race@example.com", "username": f"racer_{n}", "password": "correct-horse-7"}
        for n in range(8)
    ]

    responses = race(sign_up_calls(committing_client, bodies))

    assert statuses(responses) == Counter({201: 1, 409: 7})
    assert users_with_email(db, "race@example.com") == 1


def test_concurrent_sign_ups_with_one_username_in_different_case_create_one_user(
    committing_client: TestClient, db: Session
) -> None:
    names = ["racer", "Racer", "RACER", "rAcEr", "raCER", "RaceR", "racER", "RACer"]
    bodies = [
        {"email": f"racer{n}@example.com", "username": name, "password": "correct-horse-7"}
        for n, name in enumerate(names)
    ]

    responses = race(sign_up_calls(committing_client, bodies))

    assert statuses(responses) == Counter({201: 1, 409: 7})
    count = db.scalar(
        select(func.count()).select_from(User).where(func.lower(User.username) == "racer")
    )
    assert count == 1


def test_two_users_taking_the_same_new_email_at_once_get_200_and_409(
    committing_client: TestClient, db: Session
) -> None:
    users = [committed_user(db), committed_user(db)]

    responses = race(
        [
            partial(
                committing_client.patch,
                ME,
                json={"email": "Wanted@Example.com", "current_password": DEFAULT_PASSWORD},
                headers=auth_headers(user),
            )
            for user in users
        ]
    )

    assert sorted(response.status_code for response in responses) == [200, 409]
    assert users_with_email(db, "wanted@example.com") == 1


# --- concurrent creates -----------------------------------------------------------------------


def test_concurrent_creates_by_one_user_all_succeed(
    committing_client: TestClient, db: Session
) -> None:
    owner = committed_user(db)
    headers = auth_headers(owner)

    responses = race(
        [
            partial(committing_client.post, ITEMS, json={"title": f"parallel {n}"}, headers=headers)
            for n in range(20)
        ]
    )

    assert statuses(responses) == Counter({201: 20})
    listing = committing_client.get(ITEMS, params={"page_size": 100}, headers=headers).json()
    assert listing["total"] == 20
    assert {item["title"] for item in listing["items"]} == {f"parallel {n}" for n in range(20)}
