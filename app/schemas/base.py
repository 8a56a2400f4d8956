from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def reject_nul(value: Any) -> Any:
    # PostgreSQL refuses NUL in text, so it must be caught here, not as a 500 from the driver.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class Schema(BaseModel):
    """Request bodies: unknown fields are rejected, so a client can never set role, owner_id..."""

    model_config = ConfigDict(extra="forbid")

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
