"""Items and who may see or change them: owners their own, admins all."""

from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from app.core.errors import NotFoundError, PermissionDeniedError
from app.core.etags import Precondition
from app.core.roles import Role
from app.core.security import TokenClaims
from app.crud import item_crud
from app.crud.read_scopes import items_of
from app.models.item import Item
from app.schemas.item import ItemCreate, ItemRead, ItemUpdate
from app.schemas.page import ItemListQuery
from app.services import auth as auth_service
from app.services.auth import Actor, Caller
from app.services.cached_pages import PageRows, cached_page
from app.services.common import guarded_write


def create_item(session: Session, *, owner: Actor, item_in: ItemCreate) -> Row[Any]:
    """The new item, as the row stored."""
    return item_crud.insert(session, obj_in=item_in, owner_id=owner.id)


def load_for_token(
    session: Session, *, claims: TokenClaims, item_id: int
) -> tuple[Caller, Item | None]:
    """The token's user and the item, loaded together in one round trip. The token must still
    speak for an active account (401/403); whether the item is visible is the caller's next
    step (``ensure_visible``)."""
    viewer, item = item_crud.get_with_viewer(session, item_id=item_id, viewer_id=claims.user_id)
    return auth_service.ensure_token_state(viewer, claims=claims), item


def ensure_visible(item: Item | None, *, user: Actor, item_id: int) -> Item:
    """The item if ``user`` may see it; someone else's item is as missing as a deleted one."""
    if item is None or (user.role != Role.ADMIN and item.owner_id != user.id):
        raise NotFoundError(f"Item {item_id} not found")
    return item


def list_items(session: Session, *, user: Actor, query: ItemListQuery) -> PageRows:
    if user.role == Role.ADMIN:
        owner_id = query.owner_id
    elif query.owner_id is not None:
        raise PermissionDeniedError("Only admins may filter by owner_id")
    else:
        owner_id = user.id
    return cached_page(
        items_of(owner_id),
        query,
        read_as=ItemRead,
        load=lambda: item_crud.get_multi(
            session,
            filters={"owner_id": owner_id},
            search=query.q,
            sort=query.sort_keys,
            offset=query.offset,
            limit=query.page_size,
        ),
    )


def update_item(
    session: Session, *, item: Item, item_in: ItemUpdate, precondition: Precondition | None = None
) -> Item:
    with guarded_write(item, precondition):
        return item_crud.update(session, db_obj=item, obj_in=item_in)


def delete_item(session: Session, *, item: Item, precondition: Precondition | None = None) -> None:
    with guarded_write(item, precondition):
        item_crud.delete(session, db_obj=item)
