from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# Ids are 32-bit integer columns (larger ones could overflow SQLite).
MAX_ID = 2**31 - 1


def require_decimal_digits(value: Any) -> Any:
    """Text for an integer must be plain ASCII decimal digits: Python's ``int()`` (and so
    Pydantic's lax mode) would also take "7.0", "+7", " 7" and "1_0", so one resource would
    answer at several URLs."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise PydanticCustomError("int_parsing", "Input should be plain decimal digits")
    return value


# For an integer in a path or query string, after its bounds (so the schema keeps them):
# ``Annotated[int, Field(ge=1), DIGITS_ONLY]``.
DIGITS_ONLY = BeforeValidator(require_decimal_digits)
# A resource id as the client sends it (path or query).
DecimalId = Annotated[int, Field(ge=1, le=MAX_ID), DIGITS_ONLY]


# Documents reject_nul in the OpenAPI document (ECMA-262 and Python read `\x00` alike).
NO_NUL_PATTERN = r"^[^\x00]*$"


def reject_nul(value: Any) -> Any:
    # PostgreSQL refuses NUL in text, so it must be caught here, not as a 500 from the driver.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _document_no_nul(schema: dict[str, Any]) -> None:
    """Every text field refuses NUL (422); say so where no pattern or format says more."""
    for prop in schema.get("properties", {}).values():
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "string" and not {"pattern", "format"} & option.keys():
                option["pattern"] = NO_NUL_PATTERN


class Schema(BaseModel):
    """Request bodies: unknown fields are rejected, so a client can never set role, owner_id..."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_no_nul)

    @field_validator("*", mode="before")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class ReadSchema(BaseModel):
    """Response bodies, read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


def reject_null(value: Any) -> Any:
    """For PATCH fields that may be omitted but never cleared."""
    if value is None:
        raise ValueError("may be omitted but not null")
    return value


def _not_nullable(schema: dict[str, Any]) -> None:
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


# A PATCH field that may be omitted but never sent as null (422): documented as its type alone,
# so the OpenAPI document does not invite a null the API refuses. (Typed ``T | None``, not a
# union with SkipJsonSchema[None], so error locations stay plain ``["body", "<field>"]``.)
NotNull = Annotated[
    T | None,
    BeforeValidator(reject_null),
    Field(json_schema_extra=_not_nullable),
]
