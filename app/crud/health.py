from sqlalchemy import text
from sqlalchemy.orm import Session

READINESS_TIMEOUT_MS = 2000


def ping(session: Session) -> None:
    """A round trip to the database, bounded so a hung server cannot hang the probe."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(text("SELECT 1"))
        return
    # SET/RESET rather than SET LOCAL: the probe is a GET, whose session runs in autocommit.
    session.execute(text(f"SET statement_timeout = {READINESS_TIMEOUT_MS}"))
    try:
        session.execute(text("SELECT 1"))
    finally:
        session.execute(text("RESET statement_timeout"))
