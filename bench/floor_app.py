"""The design's floor: what the item endpoints cost in FastAPI with the app's own repository,
services and schemas, and nothing else. Served like the app (``gunicorn -c gunicorn.conf.py
bench.floor_app:app``) on the same database and SECRET_KEY.

Per request: the token decoded in an async dependency on the event loop (the app's decoder),
then one thread-pool hop that opens an ORM Session, runs the app's service call (the same
statements as the app) and ends the unit of work, then Pydantic validates and serialises the
response model. Absent, so they are what the app pays beyond it: middleware (request id,
security headers, access log, metrics), the route class's checks (body size, content type,
rate limit, database admission), the session dependency, conditional requests (ETag), problem
details. Error handling is FastAPI's default, plus the app's domain errors answered with their
status and detail only: the bench sends only valid requests.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.core.db import ReadOnlySessionLocal, SessionLocal, unit_of_work
from app.core.errors import AppError
from app.core.problems import status_of
from app.core.security import TokenClaims, decode_access_token
from app.models.item import Item
from app.schemas.item import ItemCreate, ItemRead
from app.schemas.page import ItemListQuery, Page
from app.services import auth as auth_service
from app.services import items as item_service

app = FastAPI()


@app.exception_handler(AppError)
async def app_error(_request: Request, error: AppError) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, status_code=status_of(error))


async def token_claims(request: Request) -> TokenClaims:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise HTTPException(401)
    try:
        return decode_access_token(token)
    except ValueError:
        raise HTTPException(401) from None


@app.get("/health")
async def health() -> dict[str, str]:  # the bench's boot check
    return {"status": "ok"}


Claims = Annotated[TokenClaims, Depends(token_claims)]


def _read_item(claims: TokenClaims, item_id: int) -> Item:
    with ReadOnlySessionLocal() as session:
        user, item = item_service.load_for_token(session, claims=claims, item_id=item_id)
        return item_service.ensure_visible(item, user=user, item_id=item_id)


@app.get("/api/v1/items/{item_id}", response_model=ItemRead)
async def read_item(item_id: int, claims: Claims) -> Item:
    return await run_in_threadpool(_read_item, claims, item_id)


def _list_items(claims: TokenClaims, query: ItemListQuery) -> Page[ItemRead]:
    with ReadOnlySessionLocal() as session:
        user = auth_service.get_token_user(session, claims=claims)
        items, total = item_service.list_items(session, user=user, query=query)
        return Page[ItemRead].build(items, total=total, page=query.page, page_size=query.page_size)


@app.get("/api/v1/items", response_model=Page[ItemRead])
async def list_items(claims: Claims, query: Annotated[ItemListQuery, Query()]) -> Page[ItemRead]:
    return await run_in_threadpool(_list_items, claims, query)


def _create_item(claims: TokenClaims, item_in: ItemCreate) -> Item:
    with SessionLocal() as session, unit_of_work(session):
        user = auth_service.get_token_user(session, claims=claims)
        return item_service.create_item(session, owner=user, item_in=item_in)


@app.post("/api/v1/items", status_code=201, response_model=ItemRead)
async def create_item(claims: Claims, item_in: ItemCreate, response: Response) -> Item:
    item = await run_in_threadpool(_create_item, claims, item_in)
    response.headers["Location"] = f"/api/v1/items/{item.id}"
    return item
