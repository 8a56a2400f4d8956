from pydantic import BaseModel, Field


class ProblemFieldError(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "password"]])
    msg: str = Field(examples=["Value error, must contain at least one letter and one digit"])
    type: str = Field(examples=["value_error"])


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every 4xx and 5xx response."""

    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["Item 42 not found"])
    instance: str = Field(examples=["/api/v1/items/42"])
    request_id: str | None = Field(examples=["3f2b8c0e9a4d4e6f8a1b2c3d4e5f6a7b"])
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Validation errors (422 only)"
    )
