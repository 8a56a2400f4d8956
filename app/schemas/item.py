from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.schemas.base import NotNull, ReadSchema, Schema

Title = Annotated[str, Field(min_length=1, max_length=200, examples=["Buy milk"])]
Description = Annotated[str, Field(max_length=5000, examples=["Two litres, semi-skimmed"])]


class ItemCreate(Schema):
    title: Title
    description: Description | None = None


class ItemUpdate(Schema):
    """Omitted fields stay as they are; `description: null` clears the description."""

    title: NotNull[Title] = None
    description: Description | None = None


class ItemRead(ReadSchema):
    id: int
    title: str
    description: str | None
    owner_id: int
    created_at: datetime
    updated_at: datetime
