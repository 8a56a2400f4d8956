"""What the read cache (app.core.read_cache) keeps, by scope: the names readers look up under
and the names each repository's writes renew, in one place so the two always agree."""

from typing import Any

ALL_USERS = "users"


def items_of(owner_id: int | None) -> str:
    """The scope of one owner's items, or of everyone's (``None``: an admin's unfiltered list)."""
    return "items" if owner_id is None else f"items:owner:{owner_id}"


def written_item(item: Any) -> tuple[str, ...]:
    return items_of(item.owner_id), items_of(None)


def written_user(user: Any) -> tuple[str, ...]:
    # Deleting a user deletes its items too (ON DELETE CASCADE), without a statement of ours.
    return ALL_USERS, items_of(user.id), items_of(None)
