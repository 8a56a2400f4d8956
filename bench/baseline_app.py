"""The baseline: the benchmarked endpoints with no framework, no ORM and no validation layer.

A raw ASGI callable served like the app (``gunicorn -c gunicorn.conf.py bench.baseline_app:app``,
same worker class and count) on the same database and with the same SECRET_KEY, so a token
from either works on both. Per request it does the app's work and no more:

* the same SQL statements, through the DB-API driver (psycopg2 / sqlite3) on one connection per
  thread: reads in autocommit mode, a write in one transaction committed before the response;
* the same token check: python-jose's decode with the pinned algorithm and the same claims;
* bcrypt through passlib for logins;
* JSON written by hand.

The database work of a request runs in one call on a thread pool of DB_POOL_SIZE threads (the
app's sync routes and dependencies run on a thread pool too); the token check runs on the
event loop, as in the app. Deliberately absent: routing and dependency injection, Pydantic
validation and serialisation, the ORM, the access log, metrics, request ids, rate limits, the
pool's idle-connection check. What the baseline does not do is what the app's extra time is
spent on.

It is the lower bound of the work, not a copy of the app's choices (bench/README.md, "How the
baseline works"): reads open no transaction (on SQLite: take no write lock), and a login reads
its user before hashing, holding nothing while bcrypt runs.
"""

import asyncio
import hmac
import json
import math
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]
from jose import JWTError, jwt
from passlib.context import CryptContext

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
T = TypeVar("T")

# The app's settings, from the same environment variables and with the same defaults.
SECRET_KEY = os.environ["SECRET_KEY"]
DATABASE_URL = os.environ["DATABASE_URL"]
JWT_ALGORITHM = os.environ.get("JWT_ALGORITHM", "HS256")
TOKEN_LIFETIME = timedelta(minutes=int(os.environ.get("ACCESS_TOKEN_EXPIRE_MINUTES", "30")))
BCRYPT_ROUNDS = int(os.environ.get("BCRYPT_ROUNDS", "12"))
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))

# The app's constants (app.core.security, app.core.db).
MAX_TOKEN_LENGTH = 4096
MAX_ID = 2**31 - 1
TOKEN_KEY_LENGTH = 32
MAX_PAGE_SIZE = 100
SQLITE_BUSY_TIMEOUT_S = 5.0
POSTGRES_CONNECT_TIMEOUT_S = 2
POSTGRES_STATEMENT_TIMEOUT_MS = 15000
ADMIN_ROLE = "admin"
ITEMS_PATH = "/api/v1/items"

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

# The app's security headers on a JSON response (app.core.middleware).
_SECURITY_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]


class HttpError(Exception):
    def __init__(self, status: int, detail: str, headers: Headers | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: Headers

    @classmethod
    def json(
        cls,
        status: int,
        body: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        *,
        media_type: bytes = b"application/json",
    ) -> "Response":
        data = body.encode()
        return cls(
            status,
            data,
            [
                (b"content-type", media_type),
                (b"content-length", str(len(data)).encode()),
                *_SECURITY_HEADERS,
                *headers,
            ],
        )


HEALTH = Response.json(200, '{"status":"ok"}')


# --- database ---------------------------------------------------------------------------------


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> object: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    def unit_of_work(self, *, write: bool) -> AbstractContextManager[Cursor]: ...
    def sql(self, statement: str) -> str: ...
    def timestamp(self, value: Any) -> datetime: ...
    def bind_timestamp(self, value: datetime) -> Any: ...


class PostgresDatabase:
    """psycopg2, one connection per thread."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._dsn = urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))
        self._local = threading.local()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = psycopg2.connect(
                self._dsn,
                connect_timeout=POSTGRES_CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={POSTGRES_STATEMENT_TIMEOUT_MS}",
            )
            self._local.connection = connection
        return connection

    @contextmanager
    def unit_of_work(self, *, write: bool) -> Iterator[Cursor]:
        """Reads: autocommit, no BEGIN and no COMMIT. Writes: one transaction (psycopg2 sends
        BEGIN before the first statement), committed at the end."""
        connection = self._connection()
        if connection.autocommit == write:  # a client-side switch: no round trip
            connection.autocommit = not write
        try:
            with connection.cursor() as cursor:
                yield cursor
        except BaseException:
            if connection.closed:  # the server went away: reconnect on the next request
                self._local.connection = None
            elif write:
                connection.rollback()
            raise
        else:
            if write:
                connection.commit()

    def sql(self, statement: str) -> str:
        return statement

    def timestamp(self, value: Any) -> datetime:
        moment: datetime = value
        return moment.astimezone(UTC)

    def bind_timestamp(self, value: datetime) -> Any:
        return value


class SQLiteDatabase:
    """sqlite3 configured as the app configures it (WAL, busy timeout, foreign keys), one
    connection per thread."""

    def __init__(self, url: str) -> None:
        self._path = url.removeprefix("sqlite:///")
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None
            )
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    @contextmanager
    def unit_of_work(self, *, write: bool) -> Iterator[Cursor]:
        """Reads: autocommit statements, no write lock. Writes: ``BEGIN IMMEDIATE`` (the write
        lock up front, as the app takes it) ... ``COMMIT``."""
        cursor = self._connection().cursor()
        try:
            if write:
                cursor.execute("BEGIN IMMEDIATE")
            yield cursor
        except BaseException:
            if cursor.connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        else:
            if write:
                cursor.execute("COMMIT")
        finally:
            cursor.close()

    def sql(self, statement: str) -> str:
        return _qmark(statement)

    def timestamp(self, value: Any) -> datetime:
        # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff", UTC without an offset.
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    def bind_timestamp(self, value: datetime) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@cache
def _qmark(statement: str) -> str:
    return statement.replace("%s", "?")


@cache
def database() -> Database:
    if DATABASE_URL.startswith("sqlite"):
        return SQLiteDatabase(DATABASE_URL)
    return PostgresDatabase(DATABASE_URL)


@cache
def _executor() -> ThreadPoolExecutor:
    # Created in the worker process (Gunicorn imports the app after forking).
    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="db")


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor(), partial(function, *args))


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
    return HttpError(401, detail, [(b"www-authenticate", b"Bearer")])


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    token_key: str


def token_claims(scope: Scope) -> Claims:
    """The app's checks (app.core.security.decode_access_token), in the same order."""
    authorization = ""
    for name, value in scope["headers"]:
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


def _acting_user_role(db: Database, cursor: Cursor, claims: Claims) -> str:
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


# --- endpoints (each runs in one thread-pool call) ----------------------------------------------


def read_item(claims: Claims, item_id: int) -> Response:
    db = database()
    with db.unit_of_work(write=False) as cursor:
        role = _acting_user_role(db, cursor, claims)
        if role == ADMIN_ROLE:
            cursor.execute(db.sql(SQL_ITEM), (item_id,))
        else:
            cursor.execute(db.sql(SQL_OWN_ITEM), (item_id, claims.user_id))
        row = cursor.fetchone()
    if row is None:
        raise HttpError(404, f"Item {item_id} not found")
    item = Item.from_row(db, row)
    return Response.json(200, item.json(), [(b"etag", item.etag())])


def list_items(claims: Claims, page: int, page_size: int) -> Response:
    db = database()
    offset = (page - 1) * page_size
    with db.unit_of_work(write=False) as cursor:
        role = _acting_user_role(db, cursor, claims)
        mine = role != ADMIN_ROLE
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
    return Response.json(200, body)


def create_item(claims: Claims, title: str, description: str | None) -> Response:
    db = database()
    now = datetime.now(UTC)
    stamp = db.bind_timestamp(now)
    with db.unit_of_work(write=True) as cursor:
        _acting_user_role(db, cursor, claims)
        cursor.execute(db.sql(SQL_INSERT_ITEM), (title, description, claims.user_id, stamp, stamp))
        item_id = int(cursor.fetchone()[0])
    item = Item(item_id, title, description, claims.user_id, 1, now, now)
    location = f"{ITEMS_PATH}/{item_id}".encode()
    return Response.json(201, item.json(), [(b"location", location)])


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
    return Response.json(200, body, [(b"cache-control", b"no-store")])


# --- ASGI -------------------------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "Client disconnected")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def page_query(scope: Scope) -> tuple[int, int]:
    query = parse_qs(scope["query_string"].decode("latin-1"))
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


async def _dispatch(scope: Scope, receive: Receive) -> Response:
    method, path = scope["method"], scope["path"]
    if path == "/health" and method == "GET":
        return HEALTH
    if path == "/api/v1/auth/token" and method == "POST":
        form = dict(parse_qsl((await _read_body(receive)).decode()))
        email = form.get("username", "").strip().lower()
        return await in_thread(log_in, email, form.get("password", ""))
    if path == ITEMS_PATH and method == "GET":
        claims = token_claims(scope)
        return await in_thread(list_items, claims, *page_query(scope))
    if path == ITEMS_PATH and method == "POST":
        claims = token_claims(scope)
        title, description = new_item(await _read_body(receive))
        return await in_thread(create_item, claims, title, description)
    if path.startswith(f"{ITEMS_PATH}/") and method == "GET":
        item_id = path_id(path.removeprefix(f"{ITEMS_PATH}/"))
        claims = token_claims(scope)
        return await in_thread(read_item, claims, item_id)
    raise HttpError(404, "Not Found")


def problem(error: HttpError) -> Response:
    body = json.dumps({"title": error.detail, "status": error.status, "detail": error.detail})
    return Response.json(error.status, body, error.headers, media_type=b"application/problem+json")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    try:
        response = await _dispatch(scope, receive)
    except HttpError as error:
        response = problem(error)
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    await send({"type": "http.response.body", "body": response.body})
