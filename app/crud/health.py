from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core.db import STATEMENT_TIMEOUT_OPTION

READINESS_TIMEOUT_MS = 2000


def ping(session: Session) -> None:
    """A round trip to the database, bounded so a hung server cannot hang the probe."""
    # The timeout lasts only the statement's own transaction (app.core.db), so nothing is left
    # set on a server connection that a transaction pooler hands to another client.
    session.execute(
        text("SELECT 1"), execution_options={STATEMENT_TIMEOUT_OPTION: READINESS_TIMEOUT_MS}
    )
