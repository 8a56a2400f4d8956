"""Business rules and permissions. Services flush through the repositories and raise
``app.core.errors``; they never commit and know nothing about HTTP."""
