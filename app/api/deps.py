"""Typed dependency aliases: route signatures name what they need, not how it is made."""

from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.core.db import get_session
from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.roles import Role
from app.core.security import MAX_USER_ID, TokenClaims, decode_access_token
from app.models.item import Item
from app.models.user import User
from app.services import auth as auth_service
from app.services import items as item_service

# scope="function": the commit runs before the response is sent, so a failed commit is an error
# response, never a 2xx (plain yield dependencies clean up after the response since 0.118).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_token_claims(token: Annotated[str | None, Depends(oauth2_scheme)]) -> TokenClaims:
    # async: decoding is CPU-only and cheap, so it runs on the event loop, not in a thread.
    if not token:
        raise AuthenticationError("Not authenticated")
    try:
        return decode_access_token(token)
    except ValueError:
        raise AuthenticationError("Invalid or expired token", token_sent=True) from None


TokenClaimsDep = Annotated[TokenClaims, Depends(get_token_claims)]


def get_current_user(session: SessionDep, claims: TokenClaimsDep) -> User:
    return auth_service.get_token_user(session, claims=claims)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise PermissionDeniedError("Admin role required")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]

ItemId = Annotated[int, Path(ge=1, le=MAX_USER_ID, description="Item id", examples=[1])]
UserId = Annotated[int, Path(ge=1, le=MAX_USER_ID, description="User id", examples=[1])]


def get_owned_item(item_id: ItemId, session: SessionDep, user: CurrentUser) -> Item:
    return item_service.get_item(session, user=user, item_id=item_id)


OwnedItem = Annotated[Item, Depends(get_owned_item)]
