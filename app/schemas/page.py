import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.roles import Role
from app.schemas.base import DIGITS_ONLY, NO_NUL_PATTERN, DecimalId, reject_nul
from app.schemas.item import ItemRead
from app.schemas.user import UserRead

T = TypeVar("T")

MAX_PAGE = 100_000
MAX_PAGE_SIZE = 100
MAX_SORT_KEYS = 3
DEFAULT_SORT = "-created_at,-id"


def sort_grammar(*fields: str) -> dict[str, Any]:
    """The `sort` syntax as a JSON Schema pattern: up to MAX_SORT_KEYS keys, each at most once
    (the lookahead refuses a key that comes again later, with or without `-`)."""
    names = "|".join(fields)
    key = f"-?(?:{names})"
    repeated = rf"(?!(?:[^,]*,)*-?({names}),(?:[^,]*,)*-?\1(?:,|$))"
    return {"pattern": f"^{repeated}{key}(?:,{key}){{0,{MAX_SORT_KEYS - 1}}}$"}


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Rows matching the query, over all pages")
    page: int
    page_size: int
    pages: int = Field(description="ceil(total / page_size); 0 when nothing matches")

    @classmethod
    def build(cls, items: Sequence[object], *, total: int, page: int, page_size: int) -> Self:
        """A page from rows of any shape ``T`` reads from (ORM objects included)."""
        return cls.model_validate(
            {
                "items": items,
                "total": total,
                "page": page,
                "page_size": page_size,
                "pages": math.ceil(total / page_size),
            },
            from_attributes=True,
        )


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool


class ListQuery(BaseModel):
    """Query string of a list endpoint. Unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore")
    sortable_fields: ClassVar[tuple[str, ...]] = ("id", "created_at", "updated_at")

    page: Annotated[
        int, Field(ge=1, le=MAX_PAGE, description="1-based page number"), DIGITS_ONLY
    ] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), DIGITS_ONLY] = 20
    q: Annotated[
        str | None,
        Field(
            max_length=100,
            description="Case-insensitive substring search; `%` and `_` match literally",
            json_schema_extra={"pattern": NO_NUL_PATTERN},
        ),
    ] = None
    sort: Annotated[
        str,
        Field(
            max_length=200,
            description="Up to 3 comma-separated keys, `-` for descending; ties are always "
            "broken by id, so paging is stable",
            examples=["-created_at,-id"],
        ),
    ] = DEFAULT_SORT

    @field_validator("q", mode="before")
    @classmethod
    def _reject_nul(cls, value: object) -> object:
        return reject_nul(value)

    @field_validator("sort")
    @classmethod
    def _check_sort(cls, value: str) -> str:
        keys = [key.strip() for key in value.split(",")]
        if len(keys) > MAX_SORT_KEYS:
            raise ValueError(f"at most {MAX_SORT_KEYS} sort keys")
        fields = [key.removeprefix("-") for key in keys]
        unknown = [field for field in fields if field not in cls.sortable_fields]
        if unknown:
            allowed = ", ".join(cls.sortable_fields)
            raise ValueError(f"unknown sort key {unknown[0]!r}; allowed: {allowed}")
        if len(set(fields)) != len(fields):
            raise ValueError("a sort key may appear only once")
        return ",".join(keys)

    @property
    def sort_keys(self) -> tuple[SortKey, ...]:
        return tuple(
            SortKey(field=key.removeprefix("-"), descending=key.startswith("-"))
            for key in self.sort.split(",")
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


class UserListQuery(ListQuery):
    sortable_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "email",
        "username",
        "created_at",
        "updated_at",
    )
    sort: Annotated[
        str,
        Field(
            max_length=200,
            description="Up to 3 comma-separated keys of id, email, username, created_at, "
            "updated_at, each at most once; `-` for descending; ties broken by id",
            json_schema_extra=sort_grammar("id", "email", "username", "created_at", "updated_at"),
        ),
    ] = DEFAULT_SORT
    is_active: bool | None = None
    role: Role | None = None


class ItemListQuery(ListQuery):
    sortable_fields: ClassVar[tuple[str, ...]] = ("id", "title", "created_at", "updated_at")
    sort: Annotated[
        str,
        Field(
            max_length=200,
            description="Up to 3 comma-separated keys of id, title, created_at, updated_at, "
            "each at most once; `-` for descending; ties broken by id",
            json_schema_extra=sort_grammar("id", "title", "created_at", "updated_at"),
        ),
    ] = DEFAULT_SORT
    owner_id: Annotated[
        DecimalId | None,
        Field(description="Admins only: items of this owner"),
    ] = None


# Named pages, so the OpenAPI document (and every client generated from it) calls them by a
# plain name rather than ``Page_ItemRead_``.
class ItemPage(Page[ItemRead]):
    """A page of items."""


class UserPage(Page[UserRead]):
    """A page of users."""
