from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import AdminUser, CurrentUser, SessionDep, UserId
from app.api.responses import AUTH_PROBLEMS, BODY_PROBLEMS, problems
from app.api.routing import ContractRoute
from app.models.user import User
from app.schemas.page import Page, UserListQuery
from app.schemas.user import PasswordChange, UserCreate, UserRead, UserUpdateAdmin, UserUpdateMe
from app.services import users as user_service

router = APIRouter(prefix="/users", tags=["users"], route_class=ContractRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    summary="Sign up",
    description=(
        "Anyone may sign up. The account is active with the role `user`; `role`, `is_active` "
        "and other unknown fields are rejected (422). A taken email or username (compared "
        "ignoring case) is 409. `Location` names the new user."
    ),
    responses=problems(*BODY_PROBLEMS, 409, 503),
)
def sign_up(session: SessionDep, user_in: UserCreate, request: Request, response: Response) -> User:
    user = user_service.sign_up(session, user_in=user_in)
    response.headers["Location"] = str(request.url_for("read_user", user_id=user.id).path)
    return user


@router.get(
    "/me",
    response_model=UserRead,
    summary="Read my account",
    responses=problems(*AUTH_PROBLEMS, 503),
)
def read_me(user: CurrentUser) -> User:
    return user


@router.patch(
    "/me",
    response_model=UserRead,
    summary="Update my account",
    description="Change email, username or full name; omitted fields stay. Taken values: 409.",
    responses=problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 409, 503),
)
def update_me(session: SessionDep, user: CurrentUser, user_in: UserUpdateMe) -> User:
    return user_service.update_me(session, user=user, user_in=user_in)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password",
    description=(
        'A wrong `current_password` is 422 at `["body", "current_password"]` (the caller '
        "stays logged in). On success every token issued before the change stops working, "
        "including the one used for this request: log in again."
    ),
    responses=problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 503),
)
def change_password(session: SessionDep, user: CurrentUser, change: PasswordChange) -> None:
    user_service.change_password(session, user=user, change=change)


@router.get(
    "",
    response_model=Page[UserRead],
    summary="List users (admin)",
    description="Paged, searchable (`q` over email, username, full name), sortable, filterable.",
    responses=problems(*AUTH_PROBLEMS, 422, 503),
)
def list_users(
    session: SessionDep, _admin: AdminUser, query: Annotated[UserListQuery, Query()]
) -> Page[UserRead]:
    users, total = user_service.list_users(session, query=query)
    return Page[UserRead].build(users, total=total, page=query.page, page_size=query.page_size)


@router.get(
    "/{user_id}",
    response_model=UserRead,
    summary="Read a user (admin, or the user itself)",
    description="A non-admin asking for any other id gets 403, whether or not it exists.",
    responses=problems(*AUTH_PROBLEMS, 404, 422, 503),
)
def read_user(session: SessionDep, viewer: CurrentUser, user_id: UserId) -> User:
    return user_service.get_user(session, viewer=viewer, user_id=user_id)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    summary="Update a user (admin)",
    description=(
        "Admins may change any field, including `role`, `is_active` and `password` (which "
        "revokes the user's tokens). Demoting or deactivating oneself, or the last active "
        "admin, is 409."
    ),
    responses=problems(*BODY_PROBLEMS, *AUTH_PROBLEMS, 404, 409, 503),
)
def update_user(
    session: SessionDep, admin: AdminUser, user_id: UserId, user_in: UserUpdateAdmin
) -> User:
    user = user_service.get_user(session, viewer=admin, user_id=user_id)
    return user_service.update_user(session, actor=admin, user=user, user_in=user_in)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user and their items (admin)",
    description="Deleting oneself, or the last active admin, is 409.",
    responses=problems(*AUTH_PROBLEMS, 404, 409, 422, 503),
)
def delete_user(session: SessionDep, admin: AdminUser, user_id: UserId) -> None:
    user = user_service.get_user(session, viewer=admin, user_id=user_id)
    user_service.delete_user(session, actor=admin, user=user)
