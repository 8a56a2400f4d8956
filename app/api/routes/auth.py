from typing import Annotated

from fastapi import APIRouter, Form, Response

from app.api.deps import AutocommitSession, ClientAddress, LoginBudgetsDep, SessionDep
from app.api.responses import problems
from app.api.routing import CheckedRoute
from app.schemas.token import LoginForm, Token
from app.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"], route_class=CheckedRoute)


@router.post(
    "/token",
    operation_id="auth-login",
    dependencies=[AutocommitSession],
    summary="Log in (OAuth2 password flow)",
    description=(
        "Form fields `username` (the account's email, any case) and `password`. A wrong email "
        "and a wrong password give the same 401 after the same hashing work; so does a password "
        "that could never be valid (over 72 bytes, or with NUL). A deactivated account with the "
        "right password gets 403. More failed attempts than `RATE_LIMIT_LOGIN` for one email, "
        "or from one client address, within the rolling window get 429 with `Retry-After` "
        "(checked before any hashing; a success clears the email's count). The body must be a "
        "form (`application/x-www-form-urlencoded` or `multipart/form-data`): any other type "
        "is 415."
    ),
    responses=problems(400, 401, 403, 413, 415, 422, 429, 503),
)
def login(
    session: SessionDep,
    form: Annotated[LoginForm, Form()],
    client_address: ClientAddress,
    budgets: LoginBudgetsDep,
    response: Response,
) -> Token:
    user = auth_service.authenticate(
        session,
        budgets=budgets,
        email=form.username,
        password=form.password,
        client_address=client_address,
    )
    token = auth_service.issue_access_token(user)
    response.headers["Cache-Control"] = "no-store"
    return Token(access_token=token.token, expires_in=token.expires_in)
