#!/bin/sh
# Prestart: bring the schema to head, then hand PID 1 to the server so it receives SIGTERM.
set -eu
alembic upgrade head
exec "$@"
