"""All models, imported together so Alembic sees one complete metadata."""

from app.models.base import Base
from app.models.idempotency_key import IdempotencyKey
from app.models.item import Item
from app.models.login_attempt import LoginAttempt
from app.models.user import User

__all__ = ["Base", "IdempotencyKey", "Item", "LoginAttempt", "User"]
