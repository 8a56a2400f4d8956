"""Load benchmark of the service against the same work in raw SQL (bench/README.md)."""
