"""Login budgets are exact against the real server (gunicorn, two workers) on SQLite and
PostgreSQL: concurrent wrong passwords on separate connections, started together, get at most
RATE_LIMIT_LOGIN password checks, and sequential ones on fresh connections exactly that many,
whichever worker answers. The same holds with the counters in Redis, in the database (no
REDIS_URL), and in the database while REDIS_URL names a port where nothing listens."""

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.integration.conftest import (
    REDIS_URL,
    Server,
    flush_redis,
    free_port,
    log_in,
    require_redis,
    run_server,
    scratch_database,
    sign_up,
)

BUDGET = 5  # RATE_LIMIT_LOGIN=5/minute, the default
ATTEMPTS = 16
WRONG = "wrong-password-1"


@pytest.fixture(scope="module", params=["redis", "database", "redis-unreachable"])
def server(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per store and backend; each test spends budgets of its own (its own email,
    and its own client address through X-Forwarded-For, the peer being a trusted proxy)."""
    store = request.param
    redis_url = {"redis": REDIS_URL, "redis-unreachable": f"redis://127.0.0.1:{free_port()}/0"}
    if store == "redis":
        require_redis()
        flush_redis()
    directory = tmp_path_factory.mktemp(f"budgets-{backend}-{store}")
    env = {"REDIS_URL": redis_url[store]} if store in redis_url else {}
    with (
        scratch_database(backend, directory) as database_url,
        run_server(directory, database_url, **env) as running,
    ):
        yield running


def random_address() -> dict[str, str]:
    octets = uuid.uuid4().bytes[:3]
    return {"X-Forwarded-For": "127." + ".".join(str(octet) for octet in octets)}


@pytest.fixture
def address() -> dict[str, str]:
    return random_address()


def together(
    server: Server, email: str, count: int, address: dict[str, str]
) -> list[httpx.Response]:
    """``count`` wrong logins, each on its own connection, released at the same moment."""
    start = threading.Barrier(count)
    responses: list[httpx.Response | None] = [None] * count

    def attempt(index: int) -> None:
        start.wait()
        responses[index] = log_in(server, email, WRONG, headers=address)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(response is not None for response in responses)
    return [response for response in responses if response is not None]


def test_simultaneous_wrong_passwords_get_exactly_the_budget_checked(
    server: Server, address: dict[str, str]
) -> None:
    email = sign_up(server)["email"]

    responses = together(server, email, ATTEMPTS, address)

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: BUDGET, 429: ATTEMPTS - BUDGET}
    assert len(set(server.pids_of(responses))) == 2  # both workers took part
    assert all(r.headers["Retry-After"].isdigit() for r in responses if r.status_code == 429)


def test_sequential_wrong_passwords_get_exactly_the_budget_then_429_on_every_worker(
    server: Server, address: dict[str, str]
) -> None:
    email = sign_up(server)["email"]

    checked = [log_in(server, email, WRONG, headers=address) for _ in range(BUDGET)]
    limited = server.spread(lambda: log_in(server, email, WRONG, headers=address))

    assert [response.status_code for response in checked] == [401] * BUDGET
    assert {response.status_code for _, response in limited} == {429}


def test_the_right_password_is_refused_too_once_the_budget_is_spent(
    server: Server, address: dict[str, str]
) -> None:
    email = sign_up(server)["email"]
    for _ in range(BUDGET):
        log_in(server, email, WRONG, headers=address)

    response = log_in(server, email, headers=address)

    assert response.status_code == 429


def test_a_right_password_clears_the_account_budget(
    server: Server, address: dict[str, str]
) -> None:
    email = sign_up(server)["email"]
    for _ in range(BUDGET - 1):
        log_in(server, email, WRONG, headers=address)
    assert log_in(server, email, headers=address).status_code == 200
    other_address = random_address()  # this address has spent nothing

    statuses = [log_in(server, email, WRONG, headers=other_address) for _ in range(BUDGET)]

    assert [response.status_code for response in statuses] == [401] * BUDGET
