"""The generic repository (app/crud/base.py), exercised through item_crud and user_crud."""

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.roles import Role
from app.crud import item_crud, user_crud
from app.models import Item, User
from app.schemas.item import ItemCreate, ItemUpdate
from app.schemas.page import SortKey
from app.schemas.user import UserCreate
from tests.factories import make_item, make_user

ASC_ID = (SortKey("id", descending=False),)


def stored_item(session: Session, item_id: int) -> dict[str, Any] | None:
    """The row as the database holds it, without flushing pending changes first."""
    with session.no_autoflush:
        row = session.execute(
            text("SELECT title, description, owner_id FROM items WHERE id = :id"), {"id": item_id}
        ).one_or_none()
    return dict(row._mapping) if row is not None else None


def ids(rows: Any) -> list[int]:
    return [row.id for row in rows]


# --- get ------------------------------------------------------------------------------------


def test_get_returns_the_row(session: Session) -> None:
    item = make_item(session, owner=make_user(session))

    found = item_crud.get(session, item.id)

    assert found is item


def test_get_missing_returns_none(session: Session) -> None:
    found = item_crud.get(session, 2**31 - 1)

    assert found is None


# --- create ---------------------------------------------------------------------------------


def test_create_inserts_the_schema_fields_plus_extra_columns(session: Session) -> None:
    owner = make_user(session)

    item = item_crud.create(
        session, obj_in=ItemCreate(title="t", description="d"), owner_id=owner.id
    )

    assert item.id is not None
    assert stored_item(session, item.id) == {"title": "t", "description": "d", "owner_id": owner.id}


def test_create_flushes_so_the_id_and_defaults_are_set(session: Session) -> None:
    owner = make_user(session)

    item = item_crud.create(session, obj_in=ItemCreate(title="t"), owner_id=owner.id)

    assert isinstance(item.id, int)
    assert item.created_at is not None
    assert item not in session.new


def test_create_leaves_out_excluded_fields(session: Session) -> None:
    user_in = UserCreate(email="ada@example.com", username="ada", password="secret123")

    user = user_crud.create(
        session, obj_in=user_in, exclude=frozenset({"password"}), hashed_password="not-a-hash"
    )

    assert (user.email, user.username, user.hashed_password) == (
        "ada@example.com",
        "ada",
        "not-a-hash",
    )


def test_create_without_excluding_a_non_column_field_fails(session: Session) -> None:
    user_in = UserCreate(email="ada@example.com", username="ada", password="secret123")

    with pytest.raises(TypeError):
        user_crud.create(session, obj_in=user_in, hashed_password="not-a-hash")


def test_create_surfaces_constraint_violations_on_flush(session: Session) -> None:
    with pytest.raises(IntegrityError):
        item_crud.create(session, obj_in=ItemCreate(title="t"), owner_id=2**31 - 1)


# --- insert (a row, no entity) ---------------------------------------------------------------


def test_insert_returns_the_stored_row_with_its_id_and_defaults(session: Session) -> None:
    owner = make_user(session)

    row = item_crud.insert(
        session, obj_in=ItemCreate(title="t", description="d"), owner_id=owner.id
    )

    stored = session.scalars(select(Item).where(Item.id == row.id)).one()
    assert (row.title, row.description, row.owner_id, row.version) == ("t", "d", owner.id, 1)
    assert row.created_at == stored.created_at
    assert row.created_at.tzinfo is not None


def test_insert_surfaces_constraint_violations(session: Session) -> None:
    with pytest.raises(IntegrityError):
        item_crud.insert(session, obj_in=ItemCreate(title="t"), owner_id=2**31 - 1)


def test_inserted_ids_are_never_reused(session: Session) -> None:
    owner = make_user(session)
    newest = item_crud.insert(session, obj_in=ItemCreate(title="newest"), owner_id=owner.id)
    session.execute(text("DELETE FROM items WHERE id = :id"), {"id": newest.id})

    later = item_crud.insert(session, obj_in=ItemCreate(title="later"), owner_id=owner.id)

    assert later.id > newest.id


# --- update ---------------------------------------------------------------------------------


def test_update_with_model_changes_only_fields_that_were_set(session: Session) -> None:
    item = make_item(session, owner=make_user(session), title="old", description="keep")

    item_crud.update(session, db_obj=item, obj_in=ItemUpdate(title="new"))

    assert stored_item(session, item.id) == {
        "title": "new",
        "description": "keep",
        "owner_id": item.owner_id,
    }


def test_update_with_model_sets_fields_explicitly_set_to_none(session: Session) -> None:
    item = make_item(session, owner=make_user(session), title="t", description="clear me")

    item_crud.update(session, db_obj=item, obj_in=ItemUpdate(description=None))

    assert stored_item(session, item.id) == {
        "title": "t",
        "description": None,
        "owner_id": item.owner_id,
    }


def test_update_with_empty_model_changes_nothing(session: Session) -> None:
    item = make_item(session, owner=make_user(session), title="t", description="d")

    item_crud.update(session, db_obj=item, obj_in=ItemUpdate())

    assert stored_item(session, item.id) == {
        "title": "t",
        "description": "d",
        "owner_id": item.owner_id,
    }


def test_update_with_mapping_sets_those_columns(session: Session) -> None:
    user = make_user(session)
    item = make_item(session, owner=user, title="t", description="d")
    new_owner = make_user(session)

    item_crud.update(session, db_obj=item, obj_in={"owner_id": new_owner.id, "title": "moved"})

    assert stored_item(session, item.id) == {
        "title": "moved",
        "description": "d",
        "owner_id": new_owner.id,
    }


def test_update_flushes_and_returns_the_same_object(session: Session) -> None:
    item = make_item(session, owner=make_user(session))

    updated = item_crud.update(session, db_obj=item, obj_in=ItemUpdate(title="new"))

    assert updated is item
    assert item not in session.dirty


def test_update_refreshes_updated_at_and_bumps_the_version(session: Session) -> None:
    item = make_item(session, owner=make_user(session))
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    item.updated_at = long_ago
    session.flush()
    version = item.version

    item_crud.update(session, db_obj=item, obj_in=ItemUpdate(title="new"))

    assert item.updated_at > long_ago
    assert item.version == version + 1


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_the_row(session: Session) -> None:
    item = make_item(session, owner=make_user(session))
    item_id = item.id

    item_crud.delete(session, db_obj=item)

    assert stored_item(session, item_id) is None
    assert item_crud.get(session, item_id) is None


def test_delete_leaves_other_rows(session: Session) -> None:
    owner = make_user(session)
    doomed, kept = make_item(session, owner=owner), make_item(session, owner=owner)

    item_crud.delete(session, db_obj=doomed)

    assert item_crud.count(session) == 1
    assert stored_item(session, kept.id) is not None


# --- get_multi: filters and search ----------------------------------------------------------


def test_get_multi_filters_by_column_equality(session: Session) -> None:
    owner, other = make_user(session), make_user(session)
    mine = [make_item(session, owner=owner).id for _ in range(2)]
    make_item(session, owner=other)

    rows, total = item_crud.get_multi(session, filters={"owner_id": owner.id}, sort=ASC_ID)

    assert (ids(rows), total) == (mine, 2)


def test_get_multi_runs_one_shape_with_each_call_s_own_values(session: Session) -> None:
    # Statements of one shape are built once and reused: values must never stick to them.
    owner, other = make_user(session), make_user(session)
    mine = [make_item(session, owner=owner).id for _ in range(3)]
    theirs = [make_item(session, owner=other).id for _ in range(2)]

    pages = [
        item_crud.get_multi(session, filters={"owner_id": owner.id}, sort=ASC_ID, limit=2),
        item_crud.get_multi(session, filters={"owner_id": other.id}, sort=ASC_ID, limit=2),
        item_crud.get_multi(
            session, filters={"owner_id": owner.id}, sort=ASC_ID, offset=2, limit=2
        ),
    ]

    assert [(ids(rows), total) for rows, total in pages] == [
        (mine[:2], 3),
        (theirs, 2),
        (mine[2:], 3),
    ]


def test_get_multi_ignores_none_filters(session: Session) -> None:
    everyone = [make_item(session, owner=make_user(session)).id for _ in range(3)]

    rows, total = item_crud.get_multi(session, filters={"owner_id": None}, sort=ASC_ID)

    assert (ids(rows), total) == (everyone, 3)


def test_get_multi_combines_filters_with_and(session: Session) -> None:
    wanted = make_user(session, role=Role.ADMIN, is_active=False)
    make_user(session, role=Role.ADMIN, is_active=True)
    make_user(session, role=Role.USER, is_active=False)

    rows, total = user_crud.get_multi(
        session, filters={"role": Role.ADMIN, "is_active": False, "full_name": None}
    )

    assert (ids(rows), total) == ([wanted.id], 1)


def test_get_multi_search_is_a_case_insensitive_substring_over_every_search_column(
    session: Session,
) -> None:
    owner = make_user(session)
    by_title = make_item(session, owner=owner, title="Fresh MILK")
    by_description = make_item(session, owner=owner, title="t", description="buttermilk")
    make_item(session, owner=owner, title="bread", description=None)

    rows, total = item_crud.get_multi(session, search="Milk", sort=ASC_ID)

    assert (ids(rows), total) == ([by_title.id, by_description.id], 2)


@pytest.mark.parametrize(
    ("search", "matching", "other"),
    [
        ("%", "50%", "50"),
        ("5%0", "5%0", "5550"),
        ("_", "a_b", "ab"),
        ("a_c", "a_c", "abc"),
        ("/", "a/b", "ab"),
        ("//", "a//b", "a/b"),
        ("\\", "a\\b", "ab"),
        ("\\%", "a\\%b", "a\\xb"),
    ],
)
def test_get_multi_search_matches_like_wildcards_literally(
    session: Session, search: str, matching: str, other: str
) -> None:
    owner = make_user(session)
    hit = make_item(session, owner=owner, title=matching)
    make_item(session, owner=owner, title=other)

    rows, total = item_crud.get_multi(session, search=search)

    assert (ids(rows), total) == ([hit.id], 1)


def test_get_multi_search_folds_case_beyond_ascii(session: Session) -> None:
    owner = make_user(session)
    hit = make_item(session, owner=owner, title="ÉTÉ ÀÇÑ")
    make_item(session, owner=owner, title="ete acn")

    rows, total = item_crud.get_multi(session, search="été àçñ")

    assert (ids(rows), total) == ([hit.id], 1)


@pytest.mark.parametrize("search", [None, ""])
def test_get_multi_without_search_text_matches_everything(
    session: Session, search: str | None
) -> None:
    owner = make_user(session)
    everything = [make_item(session, owner=owner).id for _ in range(2)]

    rows, total = item_crud.get_multi(session, search=search, sort=ASC_ID)

    assert (ids(rows), total) == (everything, 2)


def test_get_multi_search_over_users_covers_email_username_and_full_name(
    session: Session,
) -> None:
    by_email = make_user(session, email="zed@example.com", username="aaa")
    by_username = make_user(session, email="a@example.com", username="zed_b")
    by_name = make_user(session, email="b@example.com", username="bbb", full_name="Zed C")
    make_user(session, email="c@example.com", username="ccc", full_name="nobody")

    rows, total = user_crud.get_multi(session, search="ZED", sort=ASC_ID)

    assert (ids(rows), total) == ([by_email.id, by_username.id, by_name.id], 3)


def test_get_multi_combines_search_and_filters(session: Session) -> None:
    owner, other = make_user(session), make_user(session)
    hit = make_item(session, owner=owner, title="milk")
    make_item(session, owner=owner, title="bread")
    make_item(session, owner=other, title="milk")

    rows, total = item_crud.get_multi(session, filters={"owner_id": owner.id}, search="milk")

    assert (ids(rows), total) == ([hit.id], 1)


# --- get_multi: sort ------------------------------------------------------------------------


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_get_multi_sorts_by_a_whitelisted_key(session: Session, descending: bool) -> None:
    owner = make_user(session)
    by_title = {
        title: make_item(session, owner=owner, title=title).id
        for title in ("charlie", "alpha", "bravo")
    }

    rows, _ = item_crud.get_multi(session, sort=(SortKey("title", descending=descending),))

    expected = [by_title[title] for title in sorted(by_title, reverse=descending)]
    assert ids(rows) == expected


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_get_multi_breaks_ties_by_ascending_id(session: Session, descending: bool) -> None:
    owner = make_user(session)
    tied = [make_item(session, owner=owner, title="same").id for _ in range(3)]
    first = make_item(session, owner=owner, title="a" if not descending else "z").id

    rows, _ = item_crud.get_multi(session, sort=(SortKey("title", descending=descending),))

    assert ids(rows) == [first, *tied]


def test_get_multi_sort_by_id_descending_is_not_overridden(session: Session) -> None:
    owner = make_user(session)
    created = [make_item(session, owner=owner).id for _ in range(3)]

    rows, _ = item_crud.get_multi(session, sort=(SortKey("id", descending=True),))

    assert ids(rows) == created[::-1]


def test_get_multi_applies_sort_keys_in_order(session: Session) -> None:
    owner = make_user(session)
    b1 = make_item(session, owner=owner, title="b").id
    a1 = make_item(session, owner=owner, title="a").id
    b2 = make_item(session, owner=owner, title="b").id
    a2 = make_item(session, owner=owner, title="a").id

    rows, _ = item_crud.get_multi(
        session, sort=(SortKey("title", descending=False), SortKey("id", descending=True))
    )

    assert ids(rows) == [a2, a1, b2, b1]


def test_get_multi_without_sort_orders_by_id(session: Session) -> None:
    owner = make_user(session)
    created = [make_item(session, owner=owner).id for _ in range(3)]

    rows, _ = item_crud.get_multi(session)

    assert ids(rows) == created


@pytest.mark.parametrize("field", ["description", "owner_id", "version", "title; DROP"])
def test_get_multi_refuses_keys_outside_the_sort_whitelist(session: Session, field: str) -> None:
    with pytest.raises(KeyError):
        item_crud.get_multi(session, sort=(SortKey(field, descending=False),))


def test_get_multi_user_sort_whitelist_excludes_password_hash(session: Session) -> None:
    with pytest.raises(KeyError):
        user_crud.get_multi(session, sort=(SortKey("hashed_password", descending=False),))


# --- get_multi: offset, limit and total -----------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "limit", "window"), [(0, 2, (0, 2)), (2, 2, (2, 4)), (4, 2, (4, 5)), (1, 10, (1, 5))]
)
def test_get_multi_returns_the_offset_limit_slice_and_the_full_total(
    session: Session, offset: int, limit: int, window: tuple[int, int]
) -> None:
    owner = make_user(session)
    created = [make_item(session, owner=owner).id for _ in range(5)]

    rows, total = item_crud.get_multi(session, sort=ASC_ID, offset=offset, limit=limit)

    assert ids(rows) == created[window[0] : window[1]]
    assert total == 5


@pytest.mark.parametrize("offset", [3, 4, 1000])
def test_get_multi_past_the_end_returns_no_rows_and_the_total(
    session: Session, offset: int
) -> None:
    owner = make_user(session)
    for _ in range(3):
        make_item(session, owner=owner)

    rows, total = item_crud.get_multi(session, offset=offset, limit=2)

    assert (list(rows), total) == ([], 3)


def test_get_multi_past_the_end_total_respects_filters_and_search(session: Session) -> None:
    owner, other = make_user(session), make_user(session)
    make_item(session, owner=owner, title="milk")
    make_item(session, owner=owner, title="milk shake")
    make_item(session, owner=owner, title="bread")
    make_item(session, owner=other, title="milk")

    rows, total = item_crud.get_multi(
        session, filters={"owner_id": owner.id}, search="milk", offset=10, limit=5
    )

    assert (list(rows), total) == ([], 2)


def test_get_multi_on_an_empty_table_returns_zero_total(session: Session) -> None:
    rows, total = item_crud.get_multi(session)

    assert (list(rows), total) == ([], 0)


def test_get_multi_with_no_match_returns_zero_total(session: Session) -> None:
    make_item(session, owner=make_user(session), title="bread")

    rows, total = item_crud.get_multi(session, search="milk")

    assert (list(rows), total) == ([], 0)


# --- count ----------------------------------------------------------------------------------


def test_count_counts_every_row_without_filters(session: Session) -> None:
    for _ in range(3):
        make_user(session)

    total = user_crud.count(session)

    assert total == session.scalar(select(func.count()).select_from(User)) == 3


def test_count_applies_filters_and_search(session: Session) -> None:
    owner, other = make_user(session), make_user(session)
    make_item(session, owner=owner, title="milk")
    make_item(session, owner=owner, title="bread")
    make_item(session, owner=other, title="milk")

    total = item_crud.count(session, filters={"owner_id": owner.id, "title": None}, search="MILK")

    assert total == 1


def test_count_of_nothing_is_zero(session: Session) -> None:
    total = item_crud.count(session, filters={"owner_id": 2**31 - 1})

    assert total == 0
