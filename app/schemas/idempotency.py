from datetime import datetime

from pydantic import BaseModel, ConfigDict


class StoredResponse(BaseModel):
    """What a create answered, as a retry with its key gets it again (internal)."""

    model_config = ConfigDict(frozen=True)

    status_code: int
    headers: dict[str, str]
    body: str


class IdempotencyKeyCreate(BaseModel):
    """A create's key, request fingerprint and response (internal: no client sends it)."""

    model_config = ConfigDict(frozen=True)

    scope: str
    key: str
    fingerprint: str
    status_code: int
    headers: str
    body: str
    expires_at: datetime
