from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
