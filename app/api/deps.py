"""Typed dependency aliases: route signatures name what they need, not how it is made."""

from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.api.routing import database_admission
from app.core.config import get_settings
from app.core.db import get_session, separate_unit_of_work
from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.redis_attempts import RedisAttempts
from app.core.roles import Role
from app.core.security import TokenClaims, decode_access_token
from app.core.threads import in_database_thread
from app.models.item import Item
from app.models.user import User
from app.schemas.base import DecimalId
from app.services import auth as auth_service
from app.services import items as item_service
from app.services.auth import Caller
from app.services.login_budget import DatabaseAttempts, LoginBudgets


async def admit_database_work(request: Request) -> AsyncIterator[None]:
    """Admission (see ``app.api.routing.database_admission``) for a route outside the API
    routers, whose route class already admits every request."""
    async with database_admission(request):
        yield


DatabaseAdmission = Depends(admit_database_work, scope="function")


async def mark_autocommit(request: Request) -> None:
    request.state.autocommit_session = True


# For a route that checks a password and whose writes are single statements (login, password
# and email changes): its session runs in autocommit, so no transaction (on SQLite: no write
# lock) is held while bcrypt runs, and the login budget's own unit of work
# (app.services.login_budget) never waits for the request's.
AutocommitSession = Depends(mark_autocommit)

# scope="function": the commit runs before the response is sent, so a failed commit is an error
# response, never a 2xx (plain yield dependencies clean up after the response since 0.118).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class BearerTokenClaims(OAuth2PasswordBearer):
    """The verified claims of the request's bearer token (also OpenAPI's security scheme).

    One async dependency: decoding is CPU-only and cheap, so it runs on the event loop, and
    FastAPI solves one dependency instead of the scheme plus a decoder.
    """

    async def __call__(self, request: HTTPConnection) -> TokenClaims:  # type: ignore[override]
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Not authenticated")
        try:
            claims = decode_access_token(token)
        except ValueError:
            raise AuthenticationError("Invalid or expired token", token_sent=True) from None
        request.state.user_id = claims.user_id  # for the access log
        return claims


bearer_token_claims = BearerTokenClaims(tokenUrl="/api/v1/auth/token", auto_error=False)
TokenClaimsDep = Annotated[TokenClaims, Depends(bearer_token_claims)]


# A route that declares CurrentCaller, CurrentUser, AdminUser or OwnedItem cannot run unless
# the token's account was loaded and checked (deleted or revoked: 401, deactivated: 403).
# FastAPI calls dependencies before it validates the route's own query and body, so these
# answers come before a 422, as the contract orders them.


async def get_current_caller(session: SessionDep, claims: TokenClaimsDep) -> Caller:
    """The checked caller, loading only the columns the check reads."""
    return await in_database_thread(auth_service.get_token_caller, session, claims=claims)


CurrentCaller = Annotated[Caller, Depends(get_current_caller)]


async def get_current_user(session: SessionDep, claims: TokenClaimsDep) -> User:
    """The checked caller's account itself, for routes that read or change it."""
    return await in_database_thread(auth_service.get_token_user, session, claims=claims)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(caller: CurrentCaller) -> Caller:
    if caller.role != Role.ADMIN:
        raise PermissionDeniedError("Admin role required")
    return caller


AdminUser = Annotated[Caller, Depends(get_admin)]


@lru_cache
def _configured_login_budgets() -> LoginBudgets:
    redis_url = get_settings().REDIS_URL
    return LoginBudgets(
        database=DatabaseAttempts(separate_unit_of_work),
        redis=RedisAttempts(redis_url) if redis_url else None,
    )


async def get_login_budgets() -> LoginBudgets:
    """In Redis when ``REDIS_URL`` is set (the database while it is unreachable), else in the
    database."""
    return _configured_login_budgets()


LoginBudgetsDep = Annotated[LoginBudgets, Depends(get_login_budgets)]


async def get_client_address(request: Request) -> str:
    """The peer's address; Uvicorn has already replaced it with the forwarded client's when the
    peer is a trusted proxy (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(get_client_address)]

ItemId = Annotated[DecimalId, Path(description="Item id", examples=[1])]
UserId = Annotated[DecimalId, Path(description="User id", examples=[1])]


_ITEM_ID = TypeAdapter(ItemId)


async def get_owned_item(
    request: Request, session: SessionDep, claims: TokenClaimsDep
) -> Item | None:
    """The path's item if the caller may see it; the caller and the item are loaded in one
    statement and one thread hop (not CurrentUser + a load). The caller is checked even when
    the id is malformed: then this returns None and the route answers its ``item_id``
    parameter's 422 without running."""
    try:
        item_id: int | None = _ITEM_ID.validate_python(request.path_params.get("item_id"))
    except ValidationError:
        item_id = None
    return await in_database_thread(_load_owned_item, session, claims, item_id)


def _load_owned_item(session: Session, claims: TokenClaims, item_id: int | None) -> Item | None:
    user, item = item_service.load_for_token(session, claims=claims, item_id=item_id or 0)
    if item_id is None:
        return None
    return item_service.ensure_visible(item, user=user, item_id=item_id)


# A route that takes it also declares ``item_id: ItemId`` itself, so FastAPI validates the id
# after this dependency has checked the caller: a refused caller answers 401/403 before a
# malformed id's 422 (the contract's order). Declared here instead, the id's error would make
# FastAPI skip this dependency, and the caller would go unchecked.
OwnedItem = Annotated[Item, Depends(get_owned_item)]
