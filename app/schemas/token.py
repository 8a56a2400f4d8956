from typing import Literal

from pydantic import BaseModel, Field


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires", examples=[1800])


class LoginForm(BaseModel):
    """The OAuth2 password flow's form. Its other fields (``grant_type``, ``scope``,
    ``client_id``, ``client_secret``) may be sent, as Swagger UI does, and are ignored."""

    username: str = Field(min_length=1, description="The account's email, any case")
    password: str = Field(min_length=1)
