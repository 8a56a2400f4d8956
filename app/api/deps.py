"""Typed dependency aliases: route signatures name what they need, not how it is made."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

# Re-exported: routes take every alias from here.
from app.api.unit_of_work import AutocommitSession as AutocommitSession
from app.api.unit_of_work import SessionDep as SessionDep
from app.core.config import get_settings
from app.core.db import separate_unit_of_work
from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.redis_attempts import RedisAttempts
from app.core.roles import Role
from app.core.security import TokenClaims, decode_access_token
from app.core.threads import in_thread
from app.models.item import Item
from app.models.user import User
from app.schemas.base import MAX_ID, DecimalId
from app.services import auth as auth_service
from app.services import items as item_service
from app.services.auth import Caller
from app.services.login_budget import DatabaseAttempts, LoginBudgets


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
    return await in_thread(auth_service.get_token_caller, session, claims=claims)


CurrentCaller = Annotated[Caller, Depends(get_current_caller)]


async def get_current_user(session: SessionDep, claims: TokenClaimsDep) -> User:
    """The checked caller's account itself, for routes that read or change it."""
    return await in_thread(auth_service.get_token_user, session, claims=claims)


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

UserId = Annotated[DecimalId, Path(description="User id", examples=[1])]

_ITEM_ID = TypeAdapter(DecimalId)
# The path's item id is read as text and checked by get_owned_item itself; documented as what
# it must be.
_ITEM_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


async def get_owned_item(
    session: SessionDep,
    claims: TokenClaimsDep,
    item_id: Annotated[
        str, Path(description="Item id", examples=[1], json_schema_extra=_ITEM_ID_SCHEMA)
    ],
) -> Item:
    """The path's item if the caller may see it (someone else's is 404, like a missing one).
    The caller and the item are loaded in one statement and one thread hop, and the caller is
    checked before the id: a refused caller answers 401/403 before a malformed id's 422, as the
    contract orders them. (Were the id typed as an integer here, FastAPI would answer its 422
    without calling this dependency, and the caller would go unchecked.)"""
    try:
        parsed: int | RequestValidationError = _ITEM_ID.validate_python(item_id)
    except ValidationError as exc:
        parsed = RequestValidationError(
            [{**error, "loc": ("path", "item_id", *error["loc"])} for error in exc.errors()]
        )
    return await in_thread(_load_owned_item, session, claims, parsed)


def _load_owned_item(
    session: Session, claims: TokenClaims, item_id: int | RequestValidationError
) -> Item:
    id_to_load = item_id if isinstance(item_id, int) else 0
    caller, item = item_service.load_for_token(session, claims=claims, item_id=id_to_load)
    if isinstance(item_id, RequestValidationError):
        raise item_id
    return item_service.ensure_visible(item, user=caller, item_id=item_id)


OwnedItem = Annotated[Item, Depends(get_owned_item)]
