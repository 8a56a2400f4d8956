"""Idempotent retries (Idempotency-Key on creating POSTs): a retry gets the first response again
and nothing is done twice; another body with the key is 422; a key in use is 409; only 2xx
responses are kept; keys are per caller and expire after 24 hours."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.api.idempotency import declares_idempotency
from app.api.router import API_ROUTERS
from app.crud.idempotency_key import _lock_key
from app.models import IdempotencyKey, Item, User
from app.models.base import utc_now
from app.services.idempotency import KEY_LIFETIME
from tests.api.contract import ITEMS, USERS, assert_problem
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_user

KEY = "Idempotency-Key"


def items_titled(session: Session, title: str) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Item).where(Item.title == title)) or 0


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, KEY: key}


@pytest.fixture
def key() -> str:
    return str(uuid.uuid4())


def test_every_creating_post_declares_whose_keys_it_honours() -> None:
    creating = [
        route
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods and route.status_code == 201
    ]

    assert {route.path for route in creating} >= {"/items", "/users"}
    assert all(declares_idempotency(route) for route in creating)


def test_a_retry_gets_the_first_response_again_and_creates_nothing(
    client: TestClient, session: Session, user_headers: dict[str, str], key: str
) -> None:
    first = client.post(ITEMS, json={"title": "once"}, headers=keyed(user_headers, key))
    retry = client.post(ITEMS, json={"title": "once"}, headers=keyed(user_headers, key))

    assert first.status_code == retry.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert retry.headers["content-type"] == "application/json"
    assert items_titled(session, "once") == 1


def test_the_replay_is_the_first_response_even_after_the_item_changed(
    client: TestClient, user_headers: dict[str, str], key: str
) -> None:
    first = client.post(ITEMS, json={"title": "first"}, headers=keyed(user_headers, key))
    client.patch(first.headers["Location"], json={"title": "changed"}, headers=user_headers)

    retry = client.post(ITEMS, json={"title": "first"}, headers=keyed(user_headers, key))

    assert retry.json() == first.json()


def test_the_same_json_written_differently_is_the_same_request(
    client: TestClient, session: Session, user_headers: dict[str, str], key: str
) -> None:
    headers = {**keyed(user_headers, key), "Content-Type": "application/json"}
    client.post(ITEMS, content=b'{"title": "same", "description": "d"}', headers=headers)

    retry = client.post(ITEMS, content=b'{ "description":"d","title":"same"}', headers=headers)

    assert retry.headers["Idempotent-Replayed"] == "true"
    assert items_titled(session, "same") == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(
    client: TestClient, session: Session, user_headers: dict[str, str], key: str
) -> None:
    client.post(ITEMS, json={"title": "original"}, headers=keyed(user_headers, key))

    response = client.post(ITEMS, json={"title": "other"}, headers=keyed(user_headers, key))

    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["header", KEY]]
    assert items_titled(session, "other") == 0


def test_keys_belong_to_their_caller(
    client: TestClient, session: Session, user_headers: dict[str, str], key: str
) -> None:
    other_headers = auth_headers(make_user(session))

    mine = client.post(ITEMS, json={"title": "shared key"}, headers=keyed(user_headers, key))
    theirs = client.post(ITEMS, json={"title": "shared key"}, headers=keyed(other_headers, key))

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert items_titled(session, "shared key") == 2


def test_an_error_is_not_kept_so_the_key_can_be_retried(
    client: TestClient, session: Session, user_headers: dict[str, str], key: str
) -> None:
    failed = client.post(ITEMS, json={"title": ""}, headers=keyed(user_headers, key))
    assert_problem(failed, 422)

    retry = client.post(ITEMS, json={"title": "fixed"}, headers=keyed(user_headers, key))

    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert items_titled(session, "fixed") == 1


@pytest.mark.parametrize("bad_key", ["", " ", "a b", "é", "k" * 256])
def test_a_malformed_key_is_422_at_the_header_and_changes_nothing(
    client: TestClient, session: Session, user_headers: dict[str, str], bad_key: str
) -> None:
    headers: dict[str, str | bytes] = {**user_headers, KEY: bad_key.encode()}

    response = client.post(ITEMS, json={"title": "never"}, headers=headers)

    body = assert_problem(response, 422)
    assert ["header", KEY] in [error["loc"] for error in body["errors"]]
    assert items_titled(session, "never") == 0


def test_a_revoked_token_gets_401_not_the_replay(
    client: TestClient, session: Session, user: User, key: str
) -> None:
    headers = auth_headers(user)
    client.post(ITEMS, json={"title": "mine"}, headers=keyed(headers, key))
    user.token_key = "0" * 32
    session.flush()

    response = client.post(ITEMS, json={"title": "mine"}, headers=keyed(headers, key))

    assert_problem(response, 401)


def test_a_sign_up_retry_is_replayed_instead_of_409(
    client: TestClient, session: Session, key: str
) -> None:
    body = {"email": "retry@example.com", "username": "retry", "password": DEFAULT_PASSWORD}

    first = client.post(USERS, json=body, headers={KEY: key})
    retry = client.post(USERS, json=body, headers={KEY: key})

    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_an_expired_key_is_forgotten_and_purged(
    client: TestClient, session: Session, user_headers: dict[str, str], key: str
) -> None:
    client.post(ITEMS, json={"title": "old"}, headers=keyed(user_headers, key))
    stale = session.scalars(select(IdempotencyKey)).one()
    stale.expires_at = utc_now() - timedelta(seconds=1)
    session.flush()

    again = client.post(ITEMS, json={"title": "old"}, headers=keyed(user_headers, key))
    client.post(ITEMS, json={"title": "later"}, headers=keyed(user_headers, str(uuid.uuid4())))

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert items_titled(session, "old") == 2
    session.expire_all()
    expiries = session.scalars(select(IdempotencyKey.expires_at)).all()
    assert len(expiries) == 2
    assert all(expiry > utc_now() + KEY_LIFETIME - timedelta(minutes=1) for expiry in expiries)


def test_a_key_held_by_a_running_request_is_409(
    committing_client: TestClient,
    committing_sessions: sessionmaker[Session],
    engine: Engine,
    key: str,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: a duplicate waits, then replays")
    with committing_sessions() as setup:
        user = make_user(setup)
        setup.commit()
        headers = auth_headers(user)
    with committing_sessions() as running:
        running.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(f"user:{user.id}", key)}
        )

        response = committing_client.post(ITEMS, json={"title": "t"}, headers=keyed(headers, key))

        body: dict[str, Any] = assert_problem(response, 409)
        assert "in progress" in body["detail"]
        running.rollback()

    after = committing_client.post(ITEMS, json={"title": "t"}, headers=keyed(headers, key))
    assert after.status_code == 201
