"""The yardstick: the benchmarked requests answered with raw SQL in FastAPI routes.

Served like the app (``gunicorn -c gunicorn.conf.py bench.yardstick_app:app``, same worker class
and count) on the same database and with the same SECRET_KEY, so a token from either works on
both. It holds the framework constant and leaves out the ORM, the validation layer and what the
app adds on top, so app/yardstick is the app's distance from raw SQL in the framework it is
built on (bench/README.md).

Each route takes only the ``Request`` (so FastAPI validates nothing) and parses the path, query
or body by hand. The token is checked on the event loop, as in the app: python-jose's decode with
the pinned algorithm, then the app's checks of the claims. The request's database work runs in
one call on a thread pool of DB_POOL_SIZE threads: hand-written SQL through the DB-API driver
(bench/yardstick_db.py), the same statements the app needs. The JSON is written by hand and
returned as a plain ``Response`` with the headers the app sends (``ETag``, ``Location``,
``Cache-Control``, the security headers; not ``X-Request-ID``).

It is the lower bound of the work, not a copy of the app's choices: reads open no transaction,
and a login reads its user before hashing, holding nothing while bcrypt runs.
tests/bench/test_yardstick_agrees.py checks that it answers as the app does: a yardstick doing
less would flatter the ratio.
"""

import asyncio
import hmac
import json
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl

from fastapi import FastAPI, Request, Response
from jose import JWTError, jwt
from passlib.context import CryptContext

from bench.yardstick_db import Cursor, Database, open_database

T = TypeVar("T")
Headers = Sequence[tuple[bytes, bytes]]

# The app's settings, from the same environment variables and with the same defaults.
SECRET_KEY = os.environ["SECRET_KEY"]
DATABASE_URL = os.environ["DATABASE_URL"]
JWT_ALGORITHM = os.environ.get("JWT_ALGORITHM", "HS256")
TOKEN_LIFETIME = timedelta(minutes=int(os.environ.get("ACCESS_TOKEN_EXPIRE_MINUTES", "30")))
BCRYPT_ROUNDS = int(os.environ.get("BCRYPT_ROUNDS", "12"))
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))

# The app's constants (app.core.security, app.schemas).
MAX_TOKEN_LENGTH = 4096
MAX_ID = 2**31 - 1
TOKEN_KEY_LENGTH = 32
MAX_PAGE_SIZE = 100
ADMIN_ROLE = "admin"
ITEMS_PATH = "/api/v1/items"
TOKEN_PATH = "/api/v1/auth/token"

_ITEM_COLUMNS = "id, title, description, owner_id, version, created_at, updated_at"
SQL_USER_BY_ID = "SELECT is_active, token_key, role FROM users WHERE id = %s"
SQL_LOGIN_USER = "SELECT id, hashed_password, is_active, token_key FROM users WHERE email = %s"
SQL_ITEM = f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = %s"
SQL_OWN_ITEM = f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = %s AND owner_id = %s"
# The app's list query: the page and, through a window, the total in one round trip.
_PAGE = (
    f"SELECT {_ITEM_COLUMNS}, count(*) OVER () FROM items {{where}}"
    " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
)
SQL_OWN_PAGE = _PAGE.format(where="WHERE owner_id = %s")
SQL_ANY_PAGE = _PAGE.format(where="")
SQL_COUNT_OWN = "SELECT count(*) FROM items WHERE owner_id = %s"
SQL_COUNT_ANY = "SELECT count(*) FROM items"
SQL_INSERT_ITEM = (
    "INSERT INTO items (title, description, owner_id, version, created_at, updated_at)"
    " VALUES (%s, %s, %s, 1, %s, %s) RETURNING id"
)

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
# The app's security headers on a JSON response (app.core.middleware).
SECURITY_HEADERS: Headers = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class HttpError(Exception):
    def __init__(self, status: int, detail: str, headers: Headers = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def json_response(
    status: int, body: str, headers: Headers = (), *, media_type: bytes = JSON
) -> Response:
    data = body.encode()
    response = Response(data, status)
    # The whole header list, as the app's middleware leaves it (Starlette sets only the length).
    response.raw_headers = [
        (b"content-type", media_type),
        (b"content-length", str(len(data)).encode()),
        *SECURITY_HEADERS,
        *headers,
    ]
    return response


def problem(error: HttpError) -> Response:
    body = json.dumps({"title": error.detail, "status": error.status, "detail": error.detail})
    return json_response(error.status, body, error.headers, media_type=PROBLEM_JSON)


# --- database ---------------------------------------------------------------------------------


@cache
def database() -> Database:
    return open_database(DATABASE_URL)


@cache
def executor() -> ThreadPoolExecutor:
    # Created in the worker process: Gunicorn imports the app before forking.
    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="db")


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(executor(), partial(function, *args))


# --- security ---------------------------------------------------------------------------------


@cache
def _passwords() -> CryptContext:
    return CryptContext(schemes=["bcrypt"], bcrypt__rounds=BCRYPT_ROUNDS)


@cache
def _dummy_hash() -> str:
    # An unknown email costs the same hashing as a wrong password, as in the app.
    hashed: str = _passwords().hash("dummy password for unknown accounts 1")
    return hashed


def _verify_password(password: str, hashed: str | None) -> bool:
    try:
        matches = bool(_passwords().verify(password, hashed or _dummy_hash()))
    except (ValueError, TypeError):
        return False
    return matches and hashed is not None


def _unauthorized(detail: str) -> HttpError:
    return HttpError(401, detail, ((b"www-authenticate", b"Bearer"),))


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    token_key: str


def token_claims(request: Request) -> Claims:
    """The app's checks (app.core.security.decode_access_token), in the same order."""
    authorization = ""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Not authenticated")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _unauthorized("Invalid or expired token")
    try:
        claims = jwt.decode(
            token,
            SECRET_KEY,
            algorithms=[JWT_ALGORITHM],
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
    except (JWTError, ValueError, TypeError, KeyError, UnicodeError):
        raise _unauthorized("Invalid or expired token") from None
    subject, token_key = claims.get("sub"), claims.get("tkey")
    if (
        claims.get("type") != "access"
        or not isinstance(subject, str)
        or not subject.isascii()
        or not subject.isdigit()
        or not isinstance(token_key, str)
        or len(token_key) != TOKEN_KEY_LENGTH
        or not 1 <= int(subject) <= MAX_ID
    ):
        raise _unauthorized("Invalid or expired token")
    return Claims(int(subject), token_key)


def _caller_role(db: Database, cursor: Cursor, claims: Claims) -> str:
    """The token's user must exist, be active and carry the token's key."""
    cursor.execute(db.sql(SQL_USER_BY_ID), (claims.user_id,))
    row = cursor.fetchone()
    if row is None:
        raise _unauthorized("Token is no longer valid")
    if not row[0]:
        raise HttpError(403, "This account is deactivated")
    if not hmac.compare_digest(row[1].encode(), claims.token_key.encode()):
        raise _unauthorized("Token is no longer valid")
    return str(row[2])


def _access_token(user_id: int, token_key: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_LIFETIME).timestamp()),
        "type": "access",
        "tkey": token_key,
    }
    token: str = jwt.encode(claims, SECRET_KEY, algorithm=JWT_ALGORITHM)
    return token


# --- JSON -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    title: str
    description: str | None
    owner_id: int
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, db: Database, row: Sequence[Any]) -> "Item":
        item_id, title, description, owner_id, version, created_at, updated_at = row[:7]
        return cls(
            item_id,
            title,
            description,
            owner_id,
            version,
            db.timestamp(created_at),
            db.timestamp(updated_at),
        )

    def json(self) -> str:
        return (
            f'{{"id":{self.id},"title":{json.dumps(self.title, ensure_ascii=False)},'
            f'"description":{json.dumps(self.description, ensure_ascii=False)},'
            f'"owner_id":{self.owner_id},"created_at":"{_iso(self.created_at)}",'
            f'"updated_at":"{_iso(self.updated_at)}"}}'
        )

    def etag(self) -> bytes:
        """app.core.etags.entity_tag: the version and the creation time in microseconds."""
        return f'"{self.version}.{int(self.created_at.timestamp() * 1_000_000):x}"'.encode()


def _iso(moment: datetime) -> str:
    """As Pydantic writes a UTC datetime: ISO 8601 with a Z."""
    return moment.replace(tzinfo=None).isoformat() + "Z"


# --- the database work of each request: one thread-pool call ------------------------------------


def read_item(claims: Claims, item_id: int) -> Response:
    db = database()
    with db.unit_of_work(write=False) as cursor:
        if _caller_role(db, cursor, claims) == ADMIN_ROLE:
            cursor.execute(db.sql(SQL_ITEM), (item_id,))
        else:
            cursor.execute(db.sql(SQL_OWN_ITEM), (item_id, claims.user_id))
        row = cursor.fetchone()
    if row is None:
        raise HttpError(404, f"Item {item_id} not found")
    item = Item.from_row(db, row)
    return json_response(200, item.json(), ((b"etag", item.etag()),))


def list_items(claims: Claims, page: int, page_size: int) -> Response:
    db = database()
    offset = (page - 1) * page_size
    with db.unit_of_work(write=False) as cursor:
        mine = _caller_role(db, cursor, claims) != ADMIN_ROLE
        owner = (claims.user_id,) if mine else ()
        cursor.execute(db.sql(SQL_OWN_PAGE if mine else SQL_ANY_PAGE), (*owner, page_size, offset))
        rows = cursor.fetchall()
        if rows:
            total = int(rows[0][7])
        elif offset:  # past the last page the window has no row to carry the total
            cursor.execute(db.sql(SQL_COUNT_OWN if mine else SQL_COUNT_ANY), owner)
            total = int(cursor.fetchone()[0])
        else:
            total = 0
    items = ",".join(Item.from_row(db, row).json() for row in rows)
    pages = math.ceil(total / page_size)
    body = (
        f'{{"items":[{items}],"total":{total},"page":{page},'
        f'"page_size":{page_size},"pages":{pages}}}'
    )
    return json_response(200, body)


def create_item(claims: Claims, title: str, description: str | None) -> Response:
    db = database()
    now = datetime.now(UTC)
    stamp = db.bind_timestamp(now)
    with db.unit_of_work(write=True) as cursor:
        _caller_role(db, cursor, claims)
        cursor.execute(db.sql(SQL_INSERT_ITEM), (title, description, claims.user_id, stamp, stamp))
        item_id = int(cursor.fetchone()[0])
    item = Item(item_id, title, description, claims.user_id, 1, now, now)
    location = f"{ITEMS_PATH}/{item_id}".encode()
    return json_response(201, item.json(), ((b"location", location),))


def log_in(email: str, password: str) -> Response:
    db = database()
    with db.unit_of_work(write=False) as cursor:
        cursor.execute(db.sql(SQL_LOGIN_USER), (email,))
        row = cursor.fetchone()
    if not _verify_password(password, row[1] if row else None) or row is None:
        raise _unauthorized("Incorrect email or password")
    if not row[2]:
        raise HttpError(403, "This account is deactivated")
    body = (
        f'{{"access_token":"{_access_token(int(row[0]), str(row[3]))}",'
        f'"token_type":"bearer","expires_in":{int(TOKEN_LIFETIME.total_seconds())}}}'
    )
    return json_response(200, body, ((b"cache-control", b"no-store"),))


# --- the request, parsed by hand ----------------------------------------------------------------


def page_query(request: Request) -> tuple[int, int]:
    query = parse_qs(request.scope["query_string"].decode("latin-1"))
    try:
        page = int(query.get("page", ["1"])[0])
        page_size = int(query.get("page_size", ["20"])[0])
    except ValueError:
        raise HttpError(422, "page and page_size must be integers") from None
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise HttpError(422, "page or page_size out of range")
    return page, page_size


def new_item(body: bytes) -> tuple[str, str | None]:
    try:
        data = json.loads(body)
    except ValueError:
        raise HttpError(400, "Malformed JSON") from None
    title = data.get("title") if isinstance(data, dict) else None
    description = data.get("description") if isinstance(data, dict) else None
    if not isinstance(title, str) or not (description is None or isinstance(description, str)):
        raise HttpError(422, "title must be a string, description a string or null")
    return title, description


def path_id(raw_id: str) -> int:
    if not raw_id.isdigit() or not 1 <= int(raw_id) <= MAX_ID:
        raise HttpError(404, "Not Found")
    return int(raw_id)


# --- routes -----------------------------------------------------------------------------------

app = FastAPI(openapi_url=None)


@app.exception_handler(HttpError)
async def _problem(_request: Request, error: HttpError) -> Response:
    return problem(error)


@app.get("/health")
async def health() -> Response:  # the bench's boot check
    return json_response(200, '{"status":"ok"}')


@app.post(TOKEN_PATH)
async def login(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode()))
    email = form.get("username", "").strip().lower()
    return await in_thread(log_in, email, form.get("password", ""))


@app.get(ITEMS_PATH)
async def list_items_route(request: Request) -> Response:
    claims = token_claims(request)
    page, page_size = page_query(request)
    return await in_thread(list_items, claims, page, page_size)


@app.post(ITEMS_PATH)
async def create_item_route(request: Request) -> Response:
    claims = token_claims(request)
    title, description = new_item(await request.body())
    return await in_thread(create_item, claims, title, description)


@app.get(f"{ITEMS_PATH}/{{item_id}}")
async def read_item_route(request: Request) -> Response:
    item_id = path_id(request.path_params["item_id"])
    claims = token_claims(request)
    return await in_thread(read_item, claims, item_id)
