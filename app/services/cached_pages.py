"""List pages (rows and total) through the read cache (app.core.read_cache), when it is on.

A page's total counts every matching row, so a list costs time in proportion to the rows in
scope; cached, a repeated page costs one Redis round trip until a write renews its scope.
"""

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from app.core.read_cache import get_read_cache

PageRows = tuple[Sequence[Any], int]


@lru_cache
def _page_adapter(read_schema: type[BaseModel]) -> TypeAdapter[tuple[list[Any], int]]:
    return TypeAdapter(tuple[list[read_schema], int])  # type: ignore[valid-type]


def cached_page(
    scope: str, query: BaseModel, *, read_as: type[BaseModel], load: Callable[[], PageRows]
) -> PageRows:
    """The page ``load`` reads for ``query`` in ``scope`` (its rows as ``read_as``, the schema
    a client receives them as), from the cache when it holds one under the scope's current
    version. ``scope`` must say whose rows these are: the caller's authorisation decides it,
    never the query alone."""
    cache = get_read_cache()
    lookup = cache.lookup(scope, query.model_dump_json()) if cache else None
    if cache is None or lookup is None:
        return load()
    adapter = _page_adapter(read_as)
    if lookup.value is not None:
        return adapter.validate_json(lookup.value)
    rows, total = load()
    page = adapter.validate_python((rows, total), from_attributes=True)
    cache.store(lookup, adapter.dump_json(page))
    return page
