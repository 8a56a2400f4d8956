"""Load benchmark of the service against minimal baselines (bench/README.md)."""
