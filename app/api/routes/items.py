from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import Row

from app.api.conditional import IfMatch, IfNoneMatch, not_modified, tagged
from app.api.deps import AutocommitSession, CurrentCaller, OwnedItem, SessionDep
from app.api.idempotency import IdempotentCreate
from app.api.responses import (
    AUTH_PROBLEMS,
    BODY_PROBLEMS,
    CREATED,
    TAGGED,
    TAGGED_OR_NOT_MODIFIED,
    describe_created,
    problems,
)
from app.api.routing import CheckedRoute
from app.models.item import Item
from app.schemas.item import ItemCreate, ItemRead, ItemUpdate
from app.schemas.page import ItemListQuery, ItemPage
from app.services import items as item_service

router = APIRouter(prefix="/items", tags=["items"], route_class=CheckedRoute)


@router.post(
    "",
    operation_id="items-create",
    dependencies=[IdempotentCreate],
    status_code=status.HTTP_201_CREATED,
    response_model=ItemRead,
    summary="Create an item",
    description=(
        "The caller owns the new item; `owner_id` cannot be sent. `Location` names it and "
        "`ETag` is its tag, for a conditional update without a read. With an "
        "`Idempotency-Key`, a retry gets this response again and creates nothing (per caller)."
    ),
    responses={**CREATED, **problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 409, 503)},
)
def create_item(
    session: SessionDep,
    caller: CurrentCaller,
    item_in: ItemCreate,
    request: Request,
    response: Response,
) -> Row[Any]:
    item = item_service.create_item(session, owner=caller, item_in=item_in)
    describe_created(
        request, response, resource_id=item.id, version=item.version, created_at=item.created_at
    )
    return item


@router.get(
    "",
    operation_id="items-list",
    dependencies=[AutocommitSession],
    response_model=ItemPage,
    summary="List items",
    description=(
        "Users see their own items; admins see everyone's and may filter by `owner_id` "
        "(a non-admin sending `owner_id` gets 403). `q` searches title and description."
    ),
    responses=problems(*AUTH_PROBLEMS, 422, 503),
)
def list_items(
    session: SessionDep, caller: CurrentCaller, query: Annotated[ItemListQuery, Query()]
) -> ItemPage:
    items, total = item_service.list_items(session, user=caller, query=query)
    return ItemPage.build(items, total=total, page=query.page, page_size=query.page_size)


@router.get(
    "/{item_id}",
    operation_id="items-read",
    dependencies=[AutocommitSession],
    response_model=ItemRead,
    summary="Read an item (owner or admin)",
    description=(
        "Someone else's item answers 404, exactly like a missing one. The `ETag` changes with "
        "every change of the item; `If-None-Match` with the current tag answers 304."
    ),
    responses={**TAGGED_OR_NOT_MODIFIED, **problems(*AUTH_PROBLEMS, 404, 422, 503)},
)
async def read_item(  # async: the item is loaded; nothing here needs a thread
    item: OwnedItem,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> Item | Response:
    if tagged(item, response, if_none_match):
        return not_modified(response)
    return item


@router.patch(
    "/{item_id}",
    operation_id="items-update",
    response_model=ItemRead,
    summary="Update an item (owner or admin)",
    description=(
        "Omitted fields stay; `description: null` clears it; `title` cannot be null. "
        "Answers the new `ETag`. A stale `If-Match` is 412."
    ),
    responses={**TAGGED, **problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 404, 409, 412, 503)},
)
def update_item(
    session: SessionDep,
    item: OwnedItem,
    item_in: ItemUpdate,
    precondition: IfMatch,
    response: Response,
) -> Item:
    item = item_service.update_item(session, item=item, item_in=item_in, precondition=precondition)
    tagged(item, response)
    return item


@router.delete(
    "/{item_id}",
    operation_id="items-delete",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an item (owner or admin)",
    description="A stale `If-Match` is 412 and nothing is deleted.",
    responses=problems(*AUTH_PROBLEMS, 404, 409, 412, 422, 503),
)
def delete_item(
    session: SessionDep,
    item: OwnedItem,
    precondition: IfMatch,
) -> None:
    item_service.delete_item(session, item=item, precondition=precondition)
