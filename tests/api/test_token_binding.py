"""A token speaks for one account for ever: a deleted account's token is refused by every later
account, whatever its id, and a deactivation revokes tokens like a password change does."""

from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.security import create_access_token
from app.models import User
from tests.api.contract import ITEMS, TOKEN, USERS
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_item, make_user


def sign_up(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post(
        USERS,
        json={"email": f"{name}@example.com", "username": name, "password": DEFAULT_PASSWORD},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def requests_as(client: TestClient, headers: dict[str, str], item_id: int) -> list[httpx.Response]:
    """One request to every kind of authenticated endpoint."""
    return [
        client.get(f"{USERS}/me", headers=headers),
        client.patch(f"{USERS}/me", json={"full_name": "Mallory"}, headers=headers),
        client.post(
            f"{USERS}/me/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": "taken-over-42"},
            headers=headers,
        ),
        client.post(ITEMS, json={"title": "planted"}, headers=headers),
        client.get(ITEMS, headers=headers),
        client.get(f"{ITEMS}/{item_id}", headers=headers),
        client.patch(f"{ITEMS}/{item_id}", json={"title": "changed"}, headers=headers),
        client.delete(f"{ITEMS}/{item_id}", headers=headers),
        client.get(USERS, headers=headers),
        client.get(f"{USERS}/{item_id}", headers=headers),
    ]


def test_a_deleted_newest_accounts_token_is_refused_by_the_accounts_signed_up_after(
    client: TestClient, session: Session, admin_headers: dict[str, str]
) -> None:
    # The newest account is an admin: a reused id would have made its token an admin's.
    victim = make_user(session, role="admin")
    stale_headers = auth_headers(victim)
    assert client.delete(f"{USERS}/{victim.id}", headers=admin_headers).status_code == 204
    later = [sign_up(client, "later_one"), sign_up(client, "later_two")]
    item = make_item(session, owner=session.get_one(User, later[0]["id"]))

    responses = requests_as(client, stale_headers, item.id)

    assert all(account["id"] > victim.id for account in later)
    assert [response.status_code for response in responses] == [401] * len(responses)
    assert all(
        response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        for response in responses
    )
    assert client.get(f"{ITEMS}/{item.id}", headers=admin_headers).json()["title"] != "changed"


def test_a_token_with_another_accounts_id_and_no_key_of_its_own_is_refused(
    client: TestClient, session: Session, user: User, other_user: User
) -> None:
    token = create_access_token(user_id=other_user.id, token_key=user.token_key)
    forged = {"Authorization": f"Bearer {token.token}"}

    response = client.get(f"{USERS}/me", headers=forged)

    assert response.status_code == 401


def test_a_deactivated_accounts_token_is_403_and_after_reactivation_401(
    client: TestClient, session: Session, user: User, admin_headers: dict[str, str]
) -> None:
    old_headers = auth_headers(user)
    path = f"{USERS}/{user.id}"

    deactivated = client.patch(path, json={"is_active": False}, headers=admin_headers)
    while_deactivated = client.get(f"{USERS}/me", headers=old_headers)
    reactivated = client.patch(path, json={"is_active": True}, headers=admin_headers)
    after_reactivation = client.get(f"{USERS}/me", headers=old_headers)
    relogin = client.post(TOKEN, data={"username": user.email, "password": DEFAULT_PASSWORD})
    new_headers = {"Authorization": f"Bearer {relogin.json()['access_token']}"}

    assert (deactivated.status_code, reactivated.status_code) == (200, 200)
    assert while_deactivated.status_code == 403
    assert after_reactivation.status_code == 401
    assert client.get(f"{USERS}/me", headers=new_headers).status_code == 200


def test_a_deactivation_revokes_a_token_issued_in_the_same_second(
    client: TestClient, session: Session, user: User, admin_headers: dict[str, str]
) -> None:
    path = f"{USERS}/{user.id}"
    token = client.post(TOKEN, data={"username": user.email, "password": DEFAULT_PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    client.patch(path, json={"is_active": False}, headers=admin_headers)
    client.patch(path, json={"is_active": True}, headers=admin_headers)

    assert client.get(f"{USERS}/me", headers=headers).status_code == 401


def test_other_admin_changes_keep_the_accounts_tokens(
    client: TestClient, user: User, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    client.patch(f"{USERS}/{user.id}", json={"full_name": "Renamed"}, headers=admin_headers)

    assert client.get(f"{USERS}/me", headers=user_headers).status_code == 200
