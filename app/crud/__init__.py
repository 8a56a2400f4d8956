"""Repositories: the only code that builds queries. They flush; they never commit."""

from app.crud.item import item_crud
from app.crud.login_attempt import login_attempt_crud
from app.crud.user import user_crud

__all__ = ["item_crud", "login_attempt_crud", "user_crud"]
