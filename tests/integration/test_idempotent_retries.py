"""Idempotent creates against the real server (gunicorn, two workers) on SQLite and PostgreSQL:
duplicates sent at the same moment on separate connections, answered by both workers, create
exactly one row; every 2xx among them carries the same item; the others are 409 (retry later)."""

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import httpx2 as httpx

from tests.integration.conftest import Account, Server

DUPLICATES = 12


def together(count: int, send: Callable[[], httpx.Response]) -> list[httpx.Response]:
    start = threading.Barrier(count)
    responses: list[httpx.Response | None] = [None] * count

    def one(index: int) -> None:
        start.wait()
        responses[index] = send()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return [response for response in responses if response is not None]


def titled(server: Server, account: Account, title: str) -> list[dict[str, object]]:
    response = server.get(f"/api/v1/items?q={title}&page_size=100", headers=account.headers)
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_simultaneous_duplicates_create_exactly_one_item(
    shared_server: Server, account: Account
) -> None:
    title = f"once-{uuid.uuid4().hex[:12]}"
    headers = {**account.headers, "Idempotency-Key": str(uuid.uuid4())}

    responses = together(
        DUPLICATES,
        lambda: shared_server.post("/api/v1/items", json={"title": title}, headers=headers),
    )

    assert len(responses) == DUPLICATES
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [response for response in responses if response.status_code == 201]
    assert created
    assert len({response.json()["id"] for response in created}) == 1
    assert len({response.headers["ETag"] for response in created}) == 1
    assert [r.headers.get("Idempotent-Replayed") for r in created].count(None) == 1
    assert len(titled(shared_server, account, title)) == 1

    retry = shared_server.post("/api/v1/items", json={"title": title}, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == created[0].json()
    assert len(titled(shared_server, account, title)) == 1


def test_simultaneous_duplicate_sign_ups_create_exactly_one_account(
    shared_server: Server,
) -> None:
    name = f"it_{uuid.uuid4().hex[:12]}"
    body = {"email": f"{name}@example.com", "username": name, "password": "password123"}
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    responses = together(
        DUPLICATES, lambda: shared_server.post("/api/v1/users", json=body, headers=headers)
    )

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [response for response in responses if response.status_code == 201]
    assert len({response.json()["id"] for response in created}) == 1
    # Without the key the same sign-up is a new request: the email is taken.
    assert shared_server.post("/api/v1/users", json=body).status_code == 409
