"""Conditional requests on items and users (API.md "Conditional requests", RFC 9110 section 13):
strong ETags on reads and writes, If-None-Match (304, weak comparison) and If-Match (412,
strong comparison), and where 412 sits in the error order."""

from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Item, User
from tests.api.contract import ITEMS, ME, PROBLEM_JSON, USERS
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_item, make_user

NEW_PASSWORD = "another-secret-9"
# Not entity tags at all: a server must not treat them as matching anything.
GARBAGE_IF_MATCH = ["garbage", "W/", '"unterminated', "**"]


@dataclass(frozen=True)
class Resource:
    """One conditionally readable and writable resource, as one client sees it."""

    url: str
    headers: dict[str, str]
    field: str  # a text field that PATCH can change

    def get(self, client: TestClient, **headers: str) -> httpx.Response:
        return client.get(self.url, headers={**self.headers, **headers})

    def patch(self, client: TestClient, value: str, **headers: str) -> httpx.Response:
        return client.patch(self.url, json={self.field: value}, headers={**self.headers, **headers})

    def delete(self, client: TestClient, **headers: str) -> httpx.Response:
        return client.delete(self.url, headers={**self.headers, **headers})

    def etag(self, client: TestClient) -> str:
        response = self.get(client)
        assert response.status_code == 200
        return response.headers["ETag"]


def build_resource(kind: str, session: Session) -> Resource:
    owner = make_user(session)
    if kind == "item":
        item = make_item(session, owner=owner)
        return Resource(f"{ITEMS}/{item.id}", auth_headers(owner), "title")
    if kind == "me":
        return Resource(ME, auth_headers(owner), "full_name")
    admin = make_user(session, role="admin")
    return Resource(f"{USERS}/{owner.id}", auth_headers(admin), "full_name")


@pytest.fixture(params=["item", "me", "user"])
def resource(request: pytest.FixtureRequest, session: Session) -> Resource:
    """An item (its owner), the caller's account (/users/me) and a user (an admin)."""
    return build_resource(request.param, session)


@pytest.fixture(params=["item", "user"])
def deletable(request: pytest.FixtureRequest, session: Session) -> Resource:
    return build_resource(request.param, session)


def stale_tag(client: TestClient, resource: Resource) -> str:
    """A tag the resource had before a change that someone made since."""
    tag = resource.etag(client)
    assert resource.patch(client, "changed meanwhile").status_code == 200
    return tag


def assert_precondition_failed(response: httpx.Response, url: str) -> None:
    assert response.status_code == 412
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == 412
    assert body["instance"] == url
    assert body["request_id"] == response.headers["X-Request-ID"]


def row_count(session: Session, model: type[Item] | type[User], row_id: int) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.id == row_id)) or 0


# --- ETag on reads and writes ---------------------------------------------------------------


def test_get_returns_a_strong_etag(client: TestClient, resource: Resource) -> None:
    response = resource.get(client)

    assert response.status_code == 200
    tag = response.headers["ETag"]
    assert not tag.startswith("W/")
    assert len(tag) > 2
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert '"' not in tag[1:-1]


def test_get_returns_the_same_etag_while_nothing_changes(
    client: TestClient, resource: Resource
) -> None:
    first = resource.etag(client)

    second = resource.etag(client)

    assert second == first


def test_etag_changes_after_every_patch(client: TestClient, resource: Resource) -> None:
    tags = [resource.etag(client)]

    for value in ("first change", "second change"):
        assert resource.patch(client, value).status_code == 200
        tags.append(resource.etag(client))

    assert len(set(tags)) == 3


def test_patch_answers_the_new_etag_that_a_following_get_returns(
    client: TestClient, resource: Resource
) -> None:
    before = resource.etag(client)

    response = resource.patch(client, "changed")

    assert response.status_code == 200
    assert response.headers["ETag"] != before
    assert response.headers["ETag"] == resource.etag(client)


def test_password_change_changes_the_etag_of_me(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    before = client.get(ME, headers=user_headers).headers["ETag"]

    changed = client.post(
        f"{ME}/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=user_headers,
    )

    assert changed.status_code == 204
    after = client.get(ME, headers=auth_headers(user))  # the old token is revoked
    assert after.status_code == 200
    assert after.headers["ETag"] != before


def test_admin_password_reset_answers_a_new_etag_that_a_following_get_returns(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    url = f"{USERS}/{user.id}"
    before = client.get(url, headers=admin_headers).headers["ETag"]

    response = client.patch(url, json={"password": NEW_PASSWORD}, headers=admin_headers)

    assert response.status_code == 200
    assert response.headers["ETag"] != before
    assert response.headers["ETag"] == client.get(url, headers=admin_headers).headers["ETag"]


def test_change_by_an_admin_changes_the_etag_the_user_sees_on_me(
    client: TestClient, user: User, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    before = client.get(ME, headers=user_headers).headers["ETag"]

    changed = client.patch(
        f"{USERS}/{user.id}", json={"full_name": "Set By Admin"}, headers=admin_headers
    )

    assert changed.status_code == 200
    assert client.get(ME, headers=user_headers).headers["ETag"] != before


def test_me_and_own_user_url_share_the_etag(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    me = client.get(ME, headers=user_headers)

    by_id = client.get(f"{USERS}/{user.id}", headers=user_headers)

    assert by_id.status_code == 200
    assert by_id.headers["ETag"] == me.headers["ETag"]


def test_old_etag_does_not_match_a_new_item_that_reuses_the_id(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    # SQLite hands the highest rowid out again once its row is deleted; PostgreSQL does not.
    # Either way a tag of the deleted item must not identify the new one.
    old = client.post(ITEMS, json={"title": "old"}, headers=user_headers).json()
    old_url = f"{ITEMS}/{old['id']}"
    old_tag = client.get(old_url, headers=user_headers).headers["ETag"]
    assert client.delete(old_url, headers=user_headers).status_code == 204
    new = client.post(ITEMS, json={"title": "new"}, headers=user_headers).json()
    new_url = f"{ITEMS}/{new['id']}"

    new_tag = client.get(new_url, headers=user_headers).headers["ETag"]
    stale_write = client.patch(
        new_url, json={"title": "overwrite"}, headers={**user_headers, "If-Match": old_tag}
    )

    assert new_tag != old_tag
    assert_precondition_failed(stale_write, new_url)


# --- If-None-Match ----------------------------------------------------------------------------


def test_if_none_match_with_the_current_tag_answers_304_without_a_body(
    client: TestClient, resource: Resource
) -> None:
    tag = resource.etag(client)

    response = resource.get(client, **{"If-None-Match": tag, "X-Request-ID": "conditional-1"})

    assert response.status_code == 304
    assert response.headers["ETag"] == tag
    assert response.headers["X-Request-ID"] == "conditional-1"
    assert response.content == b""


def test_if_none_match_304_carries_a_fresh_request_id_when_none_was_sent(
    client: TestClient, resource: Resource
) -> None:
    tag = resource.etag(client)

    response = resource.get(client, **{"If-None-Match": tag})

    assert response.status_code == 304
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("{current}", 304),
        ('"nope", {current}', 304),
        ("{stale}, {current}", 304),
        ("*", 304),
        ("W/{current}", 304),  # If-None-Match compares weakly
        ("{stale}", 200),
        ('{stale}, "nope"', 200),
        ("W/{stale}", 200),
    ],
)
def test_if_none_match_answers_304_only_when_a_tag_matches(
    client: TestClient, resource: Resource, header: str, expected: int
) -> None:
    stale = stale_tag(client, resource)
    current = resource.etag(client)

    response = resource.get(
        client, **{"If-None-Match": header.format(current=current, stale=stale)}
    )

    assert response.status_code == expected
    assert response.headers["ETag"] == current


def test_if_none_match_with_a_stale_tag_answers_the_current_body(
    client: TestClient, resource: Resource
) -> None:
    stale = stale_tag(client, resource)

    response = resource.get(client, **{"If-None-Match": stale})

    assert response.status_code == 200
    assert response.json()[resource.field] == "changed meanwhile"


# --- If-Match on PATCH ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["{current}", '"nope", {current}', "{stale},{current}", "*"],
    ids=["current", "list", "list-with-stale", "star"],
)
def test_patch_with_a_matching_if_match_succeeds(
    client: TestClient, resource: Resource, header: str
) -> None:
    stale = stale_tag(client, resource)
    current = resource.etag(client)

    response = resource.patch(
        client, "conditional", **{"If-Match": header.format(current=current, stale=stale)}
    )

    assert response.status_code == 200
    assert resource.get(client).json()[resource.field] == "conditional"


def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, resource: Resource
) -> None:
    stale = stale_tag(client, resource)
    before = resource.get(client)

    response = resource.patch(client, "lost update", **{"If-Match": stale})

    assert_precondition_failed(response, resource.url)
    after = resource.get(client)
    assert after.json() == before.json()
    assert after.headers["ETag"] == before.headers["ETag"]


def test_patch_with_a_weak_tag_of_the_current_version_is_412(
    client: TestClient, resource: Resource
) -> None:
    before = resource.get(client)

    response = resource.patch(client, "weak", **{"If-Match": f"W/{before.headers['ETag']}"})

    assert_precondition_failed(response, resource.url)
    assert resource.get(client).json() == before.json()


@pytest.mark.parametrize("header", GARBAGE_IF_MATCH)
def test_patch_with_a_malformed_if_match_is_412(
    client: TestClient, resource: Resource, header: str
) -> None:
    before = resource.get(client)

    response = resource.patch(client, "garbage", **{"If-Match": header})

    assert_precondition_failed(response, resource.url)
    assert resource.get(client).json() == before.json()


def test_patch_with_the_current_tag_unquoted_is_412(client: TestClient, resource: Resource) -> None:
    before = resource.get(client)

    response = resource.patch(client, "unquoted", **{"If-Match": before.headers["ETag"].strip('"')})

    assert_precondition_failed(response, resource.url)
    assert resource.get(client).json() == before.json()


def test_patch_without_if_match_is_accepted_after_a_change(
    client: TestClient, resource: Resource
) -> None:
    stale_tag(client, resource)

    response = resource.patch(client, "unconditional")

    assert response.status_code == 200
    assert resource.get(client).json()[resource.field] == "unconditional"


def test_patch_with_the_etag_it_was_just_given_succeeds(
    client: TestClient, resource: Resource
) -> None:
    first = resource.patch(client, "first", **{"If-Match": resource.etag(client)})

    second = resource.patch(client, "second", **{"If-Match": first.headers["ETag"]})

    assert first.status_code == 200
    assert second.status_code == 200


# --- If-Match on DELETE -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["{current}", '"nope", {current}', "*"],
    ids=["current", "list", "star"],
)
def test_delete_with_a_matching_if_match_deletes(
    client: TestClient, deletable: Resource, header: str
) -> None:
    current = deletable.etag(client)

    response = deletable.delete(client, **{"If-Match": header.format(current=current)})

    assert response.status_code == 204
    assert deletable.get(client).status_code == 404


def test_delete_with_a_stale_if_match_is_412_and_keeps_the_row(
    client: TestClient, deletable: Resource
) -> None:
    stale = stale_tag(client, deletable)
    before = deletable.get(client)

    response = deletable.delete(client, **{"If-Match": stale})

    assert_precondition_failed(response, deletable.url)
    after = deletable.get(client)
    assert after.status_code == 200
    assert after.json() == before.json()


@pytest.mark.parametrize("header", ["W/{current}", *GARBAGE_IF_MATCH])
def test_delete_with_a_weak_or_malformed_if_match_is_412(
    client: TestClient, deletable: Resource, header: str
) -> None:
    current = deletable.etag(client)

    response = deletable.delete(client, **{"If-Match": header.format(current=current)})

    assert_precondition_failed(response, deletable.url)
    assert deletable.get(client).status_code == 200


def test_delete_item_with_a_stale_if_match_leaves_the_stored_row(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)
    resource = Resource(f"{ITEMS}/{item.id}", user_headers, "title")
    stale = stale_tag(client, resource)

    response = resource.delete(client, **{"If-Match": stale})

    assert response.status_code == 412
    assert row_count(session, Item, item.id) == 1


def test_delete_user_with_a_stale_if_match_leaves_the_user_and_their_items(
    client: TestClient, session: Session, user: User, admin_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)
    resource = Resource(f"{USERS}/{user.id}", admin_headers, "full_name")
    stale = stale_tag(client, resource)

    response = resource.delete(client, **{"If-Match": stale})

    assert response.status_code == 412
    assert row_count(session, User, user.id) == 1
    assert row_count(session, Item, item.id) == 1


def test_delete_without_if_match_is_accepted_after_a_change(
    client: TestClient, deletable: Resource
) -> None:
    stale_tag(client, deletable)

    response = deletable.delete(client)

    assert response.status_code == 204
    assert deletable.get(client).status_code == 404


# --- error order: 401, 403/404 and 422 before 412, 412 before 409 ---------------------------


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_someone_elses_item_with_a_stale_if_match_is_404(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    method: str,
) -> None:
    item = make_item(session, owner=other_user)
    owners_view = Resource(f"{ITEMS}/{item.id}", auth_headers(other_user), "title")
    stale = stale_tag(client, owners_view)

    response = client.request(
        method,
        owners_view.url,
        json={"title": "hijack"} if method == "PATCH" else None,
        headers={**auth_headers(user), "If-Match": stale},
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_missing_item_with_if_match_star_is_404(
    client: TestClient, user_headers: dict[str, str], method: str
) -> None:
    response = client.request(
        method,
        f"{ITEMS}/{2**31 - 1}",
        json={"title": "ghost"} if method == "PATCH" else None,
        headers={**user_headers, "If-Match": "*"},
    )

    assert response.status_code == 404


def test_invalid_body_with_a_stale_if_match_is_422(client: TestClient, resource: Resource) -> None:
    stale = stale_tag(client, resource)

    response = client.patch(
        resource.url,
        json={resource.field: "x" * 5001, "unknown_field": 1},
        headers={**resource.headers, "If-Match": stale},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON


def test_stale_if_match_without_a_token_is_401(client: TestClient, resource: Resource) -> None:
    stale = stale_tag(client, resource)

    response = client.patch(
        resource.url, json={resource.field: "anon"}, headers={"If-Match": stale}
    )

    assert response.status_code == 401


def test_non_admin_patching_another_user_with_a_stale_if_match_is_403(
    client: TestClient,
    other_user: User,
    user_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    admins_view = Resource(f"{USERS}/{other_user.id}", admin_headers, "full_name")
    stale = stale_tag(client, admins_view)

    response = client.patch(
        admins_view.url, json={"full_name": "x"}, headers={**user_headers, "If-Match": stale}
    )

    assert response.status_code == 403


def test_admin_deleting_itself_with_a_stale_if_match_is_412(
    client: TestClient, session: Session, admin: User, admin_headers: dict[str, str]
) -> None:
    make_user(session, role="admin")  # not the last admin either way
    own = Resource(f"{USERS}/{admin.id}", admin_headers, "full_name")
    stale = stale_tag(client, own)

    response = own.delete(client, **{"If-Match": stale})

    assert_precondition_failed(response, own.url)
    assert row_count(session, User, admin.id) == 1


def test_admin_deleting_itself_with_the_current_tag_is_409(
    client: TestClient, session: Session, admin: User, admin_headers: dict[str, str]
) -> None:
    make_user(session, role="admin")
    own = Resource(f"{USERS}/{admin.id}", admin_headers, "full_name")

    response = own.delete(client, **{"If-Match": own.etag(client)})

    assert response.status_code == 409
    assert row_count(session, User, admin.id) == 1


def test_admin_demoting_itself_with_a_stale_if_match_is_412(
    client: TestClient, session: Session, admin: User, admin_headers: dict[str, str]
) -> None:
    make_user(session, role="admin")
    own = Resource(f"{USERS}/{admin.id}", admin_headers, "full_name")
    stale = stale_tag(client, own)

    response = client.patch(
        own.url, json={"role": "user"}, headers={**admin_headers, "If-Match": stale}
    )

    assert_precondition_failed(response, own.url)
    assert client.get(own.url, headers=admin_headers).json()["role"] == "admin"


def test_taking_a_used_email_with_a_stale_if_match_is_412(
    client: TestClient, user_headers: dict[str, str], other_user: User
) -> None:
    me = Resource(ME, user_headers, "full_name")
    stale = stale_tag(client, me)

    response = client.patch(
        ME,
        json={"email": other_user.email, "current_password": DEFAULT_PASSWORD},
        headers={**user_headers, "If-Match": stale},
    )

    assert_precondition_failed(response, ME)


def test_taking_a_used_email_with_the_current_tag_is_409(
    client: TestClient, user_headers: dict[str, str], other_user: User
) -> None:
    current = Resource(ME, user_headers, "full_name").etag(client)

    response = client.patch(
        ME,
        json={"email": other_user.email, "current_password": DEFAULT_PASSWORD},
        headers={**user_headers, "If-Match": current},
    )

    assert response.status_code == 409


# --- a create carries its ETag ------------------------------------------------------------------


def test_a_created_item_carries_the_tag_a_conditional_update_needs(
    client: TestClient, session: Session
) -> None:
    headers = auth_headers(make_user(session))
    created = client.post(ITEMS, json={"title": "tagged"}, headers=headers)
    assert created.status_code == 201
    tag = created.headers["ETag"]

    assert client.get(created.headers["Location"], headers=headers).headers["ETag"] == tag
    updated = client.patch(
        created.headers["Location"], json={"title": "changed"}, headers={**headers, "If-Match": tag}
    )
    assert updated.status_code == 200
    assert updated.headers["ETag"] != tag


def test_a_signed_up_user_carries_its_tag(client: TestClient, session: Session) -> None:
    created = client.post(
        USERS,
        json={"email": "tagged@example.com", "username": "tagged", "password": DEFAULT_PASSWORD},
    )
    assert created.status_code == 201

    admin_headers = auth_headers(make_user(session, role="admin"))
    read = client.get(created.headers["Location"], headers=admin_headers)
    assert read.headers["ETag"] == created.headers["ETag"]
