"""app.services.items: who may see, list and change which items."""

from collections.abc import Iterable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFoundError, PermissionDeniedError
from app.core.security import TokenClaims
from app.models import Item, User
from app.schemas.item import ItemCreate, ItemUpdate
from app.schemas.page import ItemListQuery
from app.services import items as item_service
from tests.factories import make_item, make_user


@pytest.fixture
def owner(session: Session) -> User:
    return make_user(session)


@pytest.fixture
def stranger(session: Session) -> User:
    return make_user(session)


def ids(items: Iterable[Item]) -> set[int]:
    return {item.id for item in items}


# --- load_for_token + ensure_visible (how a route gets an item) -----------------------------


def get_item(session: Session, *, user: User, item_id: int) -> Item:
    claims = TokenClaims(user_id=user.id, token_key=user.token_key)
    viewer, item = item_service.load_for_token(session, claims=claims, item_id=item_id)
    return item_service.ensure_visible(item, user=viewer, item_id=item_id)


def test_get_item_returns_the_owners_item(session: Session, owner: User) -> None:
    item = make_item(session, owner=owner)

    found = get_item(session, user=owner, item_id=item.id)

    assert found is item


def test_get_item_lets_an_admin_see_anyones_item(
    session: Session, owner: User, admin: User
) -> None:
    item = make_item(session, owner=owner)

    found = get_item(session, user=admin, item_id=item.id)

    assert found is item


def test_get_item_hides_someone_elses_item_as_not_found(
    session: Session, owner: User, stranger: User
) -> None:
    item = make_item(session, owner=owner)

    with pytest.raises(NotFoundError) as raised:
        get_item(session, user=stranger, item_id=item.id)

    assert raised.value.detail == f"Item {item.id} not found"


def test_get_item_missing_raises_not_found(session: Session, owner: User) -> None:
    with pytest.raises(NotFoundError) as raised:
        get_item(session, user=owner, item_id=2**31 - 1)

    assert raised.value.detail == f"Item {2**31 - 1} not found"


def test_get_item_missing_for_admin_raises_not_found(session: Session, admin: User) -> None:
    with pytest.raises(NotFoundError):
        get_item(session, user=admin, item_id=2**31 - 1)


# --- list_items -----------------------------------------------------------------------------


def test_list_items_gives_a_user_only_their_own(
    session: Session, owner: User, stranger: User
) -> None:
    mine = {make_item(session, owner=owner).id for _ in range(2)}
    make_item(session, owner=stranger)

    items, total = item_service.list_items(session, user=owner, query=ItemListQuery())

    assert (ids(items), total) == (mine, 2)


def test_list_items_gives_an_admin_everyones(
    session: Session, owner: User, stranger: User, admin: User
) -> None:
    everyone = {make_item(session, owner=user).id for user in (owner, stranger, admin)}

    items, total = item_service.list_items(session, user=admin, query=ItemListQuery())

    assert (ids(items), total) == (everyone, 3)


def test_list_items_lets_an_admin_filter_by_owner(
    session: Session, owner: User, stranger: User, admin: User
) -> None:
    theirs = {make_item(session, owner=stranger).id for _ in range(2)}
    make_item(session, owner=owner)

    items, total = item_service.list_items(
        session, user=admin, query=ItemListQuery(owner_id=stranger.id)
    )

    assert (ids(items), total) == (theirs, 2)


@pytest.mark.parametrize("whose", ["own", "someone else's"])
def test_list_items_refuses_owner_id_from_a_non_admin(
    session: Session, owner: User, stranger: User, whose: str
) -> None:
    owner_id = owner.id if whose == "own" else stranger.id

    with pytest.raises(PermissionDeniedError):
        item_service.list_items(session, user=owner, query=ItemListQuery(owner_id=owner_id))


def test_list_items_applies_search_sort_and_paging(session: Session, owner: User) -> None:
    for title in ("milk c", "milk a", "bread", "milk b"):
        make_item(session, owner=owner, title=title)
    query = ItemListQuery(q="MILK", sort="-title", page=2, page_size=2)

    items, total = item_service.list_items(session, user=owner, query=query)

    assert [item.title for item in items] == ["milk a"]
    assert total == 3


def test_list_items_default_order_is_newest_first(session: Session, owner: User) -> None:
    created = [make_item(session, owner=owner).id for _ in range(3)]

    items, _ = item_service.list_items(session, user=owner, query=ItemListQuery())

    assert [item.id for item in items] == sorted(created, reverse=True)


# --- create / update / delete ---------------------------------------------------------------


def test_create_item_is_owned_by_the_given_owner(session: Session, owner: User) -> None:
    item = item_service.create_item(
        session, owner=owner, item_in=ItemCreate(title="t", description="d")
    )

    stored = session.scalars(select(Item).where(Item.id == item.id)).one()
    assert (stored.title, stored.description, stored.owner_id) == ("t", "d", owner.id)


def test_update_item_changes_only_the_fields_sent(session: Session, owner: User) -> None:
    item = make_item(session, owner=owner, title="old", description="keep")

    updated = item_service.update_item(session, item=item, item_in=ItemUpdate(title="new"))

    assert (updated.title, updated.description, updated.owner_id) == ("new", "keep", owner.id)


def test_update_item_clears_description_sent_as_none(session: Session, owner: User) -> None:
    item = make_item(session, owner=owner, title="t", description="clear me")

    updated = item_service.update_item(session, item=item, item_in=ItemUpdate(description=None))

    assert (updated.title, updated.description) == ("t", None)


def test_delete_item_removes_it(session: Session, owner: User) -> None:
    item = make_item(session, owner=owner)
    item_id = item.id

    item_service.delete_item(session, item=item)

    assert session.scalars(select(Item).where(Item.id == item_id)).first() is None
    with pytest.raises(NotFoundError):
        get_item(session, user=owner, item_id=item_id)
