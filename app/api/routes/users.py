from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from starlette.convertors import StringConvertor, register_url_convertor

from app.api.conditional import IfMatch, IfNoneMatch, not_modified, tagged
from app.api.deps import (
    AdminUser,
    AutocommitSession,
    ClientAddress,
    CurrentCaller,
    CurrentUser,
    LoginBudgetsDep,
    SessionDep,
    UserId,
)
from app.api.idempotency import IdempotentSignUp
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
from app.models.user import User
from app.schemas.page import UserListQuery, UserPage
from app.schemas.user import PasswordChange, UserCreate, UserRead, UserUpdateAdmin, UserUpdateMe
from app.services import users as user_service


class NotMeConvertor(StringConvertor):
    """A path segment other than ``me``: /users/me is its own resource, so ``DELETE /users/me``
    is 405 (and its ``Allow`` omits DELETE), not a delete of a user whose id is "me" (422).
    Any other non-integer id still reaches the route and is 422."""

    regex = "(?!me$)[^/]+"


register_url_convertor("not_me", NotMeConvertor())

router = APIRouter(prefix="/users", tags=["users"], route_class=CheckedRoute)


@router.post(
    "",
    operation_id="users-sign-up",
    dependencies=[IdempotentSignUp],
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    summary="Sign up",
    description=(
        "Anyone may sign up. The account is active with the role `user`; `role`, `is_active` "
        "and other unknown fields are rejected (422). A taken email or username (compared "
        "ignoring case) is 409. `Location` names the new user and `ETag` is its tag. With an "
        "`Idempotency-Key` (the key alone: no caller), a retry gets this response again "
        "instead of a 409."
    ),
    responses={**CREATED, **problems(*BODY_PROBLEMS, 409, 503)},
)
def sign_up(session: SessionDep, user_in: UserCreate, request: Request, response: Response) -> User:
    user = user_service.sign_up(session, user_in=user_in)
    describe_created(
        request, response, resource_id=user.id, version=user.version, created_at=user.created_at
    )
    return user


@router.get(
    "/me",
    operation_id="users-read-me",
    dependencies=[AutocommitSession],
    response_model=UserRead,
    summary="Read my account",
    description="With an `ETag`; `If-None-Match` with the current tag answers 304.",
    responses={**TAGGED_OR_NOT_MODIFIED, **problems(*AUTH_PROBLEMS, 503)},
)
async def read_me(  # async: the user is loaded; nothing here needs a thread
    user: CurrentUser, response: Response, if_none_match: IfNoneMatch = None
) -> User | Response:
    if tagged(user, response, if_none_match):
        return not_modified(response)
    return user


@router.patch(
    "/me",
    operation_id="users-update-me",
    dependencies=[AutocommitSession],
    response_model=UserRead,
    summary="Update my account",
    description=(
        "Change email, username or full name; omitted fields stay. Changing the email (the "
        "login) needs `current_password` in the same body: missing or wrong is 422 at "
        '`["body", "current_password"]`, and a wrong one counts as a failed login for the '
        "`RATE_LIMIT_LOGIN` budgets (429 once spent). A `current_password` sent without an "
        "email change is checked all the same. Taken values: 409. Answers the new `ETag`; a "
        "stale `If-Match` is 412."
    ),
    responses={**TAGGED, **problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 409, 412, 429, 503)},
)
def update_me(
    session: SessionDep,
    user: CurrentUser,
    user_in: UserUpdateMe,
    precondition: IfMatch,
    budgets: LoginBudgetsDep,
    client_address: ClientAddress,
    response: Response,
) -> User:
    user = user_service.update_me(
        session,
        budgets=budgets,
        user=user,
        user_in=user_in,
        client_address=client_address,
        precondition=precondition,
    )
    tagged(user, response)
    return user


@router.post(
    "/me/password",
    operation_id="users-change-password",
    dependencies=[AutocommitSession],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password",
    description=(
        'A wrong `current_password` is 422 at `["body", "current_password"]` (the caller '
        "stays logged in). On success every token issued before the change stops working, "
        "including the one used for this request: log in again. A wrong `current_password` "
        "counts as a failed login for the `RATE_LIMIT_LOGIN` budgets (429 once spent)."
    ),
    responses=problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 429, 503),
)
def change_password(
    session: SessionDep,
    user: CurrentUser,
    change: PasswordChange,
    budgets: LoginBudgetsDep,
    client_address: ClientAddress,
) -> None:
    user_service.change_password(
        session, budgets=budgets, user=user, change=change, client_address=client_address
    )


@router.get(
    "",
    operation_id="users-list",
    dependencies=[AutocommitSession],
    response_model=UserPage,
    summary="List users (admin)",
    description="Paged, searchable (`q` over email, username, full name), sortable, filterable.",
    responses=problems(*AUTH_PROBLEMS, 422, 503),
)
def list_users(
    session: SessionDep, _admin: AdminUser, query: Annotated[UserListQuery, Query()]
) -> UserPage:
    users, total = user_service.list_users(session, query=query)
    return UserPage.build(users, total=total, page=query.page, page_size=query.page_size)


@router.get(
    "/{user_id:not_me}",
    operation_id="users-read",
    dependencies=[AutocommitSession],
    response_model=UserRead,
    summary="Read a user (admin, or the user itself)",
    description=(
        "A non-admin asking for any other id gets 403, whether or not it exists. With an "
        "`ETag`; `If-None-Match` with the current tag answers 304."
    ),
    responses={**TAGGED_OR_NOT_MODIFIED, **problems(*AUTH_PROBLEMS, 404, 422, 503)},
)
def read_user(
    session: SessionDep,
    viewer: CurrentCaller,
    user_id: UserId,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> User | Response:
    user = user_service.get_user(session, viewer=viewer, user_id=user_id)
    if tagged(user, response, if_none_match):
        return not_modified(response)
    return user


@router.patch(
    "/{user_id:not_me}",
    operation_id="users-update",
    response_model=UserRead,
    summary="Update a user (admin)",
    description=(
        "Admins may change any field, including `role`, `is_active` and `password` (which "
        "revokes the user's tokens). Demoting or deactivating oneself, or the last active "
        "admin, is 409. Answers the new `ETag`; a stale `If-Match` is 412."
    ),
    responses={**TAGGED, **problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 404, 409, 412, 503)},
)
def update_user(
    session: SessionDep,
    admin: AdminUser,
    user_id: UserId,
    user_in: UserUpdateAdmin,
    precondition: IfMatch,
    response: Response,
) -> User:
    user = user_service.get_user(session, viewer=admin, user_id=user_id)
    user = user_service.update_user(
        session, actor=admin, user=user, user_in=user_in, precondition=precondition
    )
    tagged(user, response)
    return user


@router.delete(
    "/{user_id:not_me}",
    operation_id="users-delete",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user and their items (admin)",
    description="Deleting oneself, or the last active admin, is 409; a stale `If-Match` 412.",
    responses=problems(*AUTH_PROBLEMS, 404, 409, 412, 422, 503),
)
def delete_user(
    session: SessionDep, admin: AdminUser, user_id: UserId, precondition: IfMatch
) -> None:
    user = user_service.get_user(session, viewer=admin, user_id=user_id)
    user_service.delete_user(session, actor=admin, user=user, precondition=precondition)
