"""The token-key migration (5d0c2b7e1f4a): ids are never reused on either backend, existing rows
survive it in both directions, and every account gets a key of its own."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from tests.migrations.conftest import downgrade, upgrade

BEFORE = "9a908d540728"
TOKEN_KEYS = "5d0c2b7e1f4a"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _insert_user(engine: Engine, name: str, *, token_column: str = "token_key") -> int:
    value = "0" * 32 if token_column == "token_key" else 0
    with engine.begin() as connection:
        return int(
            connection.execute(
                text(
                    "INSERT INTO users (email, username, hashed_password, role, is_active,"
                    f" {token_column}, version, created_at, updated_at) VALUES (:email, :name,"
                    " 'x', 'user', true, :token, 1, :now, :now) RETURNING id"
                ),
                {"email": f"{name}@example.com", "name": name, "token": value, "now": NOW},
            ).scalar_one()
        )


def _insert_item(engine: Engine, owner_id: int) -> int:
    with engine.begin() as connection:
        return int(
            connection.execute(
                text(
                    "INSERT INTO items (title, owner_id, version, created_at, updated_at)"
                    " VALUES ('t', :owner, 1, :now, :now) RETURNING id"
                ),
                {"owner": owner_id, "now": NOW},
            ).scalar_one()
        )


def _delete(engine: Engine, table: str, row_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})


def test_a_deleted_newest_users_id_is_never_given_again(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    _insert_user(empty_engine, "first")
    newest = _insert_user(empty_engine, "newest")
    _delete(empty_engine, "users", newest)

    later = _insert_user(empty_engine, "later")

    assert later > newest


def test_a_deleted_newest_items_id_is_never_given_again(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    owner = _insert_user(empty_engine, "owner")
    newest = _insert_item(empty_engine, owner)
    _delete(empty_engine, "items", newest)

    later = _insert_item(empty_engine, owner)

    assert later > newest


@pytest.fixture
def populated_before(empty_engine: Engine) -> dict[str, list[int]]:
    """The schema before the token keys, with two users and their items."""
    upgrade(empty_engine, BEFORE)
    users = [_insert_user(empty_engine, name, token_column="token_version") for name in "ab"]
    items = [_insert_item(empty_engine, owner) for owner in users for _ in range(2)]
    return {"users": users, "items": items}


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_upgrade_keeps_every_row_and_gives_each_account_its_own_key(
    empty_engine: Engine, populated_before: dict[str, list[int]]
) -> None:
    upgrade(empty_engine, TOKEN_KEYS)

    users = _rows(empty_engine, "SELECT id, token_key FROM users ORDER BY id")
    items = _rows(empty_engine, "SELECT id FROM items ORDER BY id")
    assert [row[0] for row in users] == populated_before["users"]
    assert [row[0] for row in items] == populated_before["items"]
    keys = [row[1] for row in users]
    assert all(isinstance(key, str) and len(key) == 32 for key in keys)
    assert len(set(keys)) == len(keys)


def test_upgrade_then_downgrade_keeps_every_row(
    empty_engine: Engine, populated_before: dict[str, list[int]]
) -> None:
    upgrade(empty_engine, TOKEN_KEYS)

    downgrade(empty_engine, BEFORE)

    users = _rows(empty_engine, "SELECT id, token_version FROM users ORDER BY id")
    assert users == [(user_id, 0) for user_id in populated_before["users"]]
    items = _rows(empty_engine, "SELECT id FROM items ORDER BY id")
    assert [row[0] for row in items] == populated_before["items"]


def test_after_the_upgrade_a_deleted_users_id_is_not_reused(
    empty_engine: Engine, populated_before: dict[str, list[int]]
) -> None:
    upgrade(empty_engine, TOKEN_KEYS)
    newest = populated_before["users"][-1]
    _delete(empty_engine, "users", newest)

    later = _insert_user(empty_engine, "later")

    assert later > newest
    assert _rows(empty_engine, f"SELECT count(*) FROM items WHERE owner_id = {newest}") == [(0,)]
