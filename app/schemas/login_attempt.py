from pydantic import BaseModel, ConfigDict


class LoginAttemptCreate(BaseModel):
    """A password check taking its place in a budget (internal: no client sends it)."""

    model_config = ConfigDict(frozen=True)

    budget: str
    attempted_at: float
