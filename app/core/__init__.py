"""Cross-cutting infrastructure: configuration, database, security, errors, logging.

Everything in ``app`` may import ``app.core``; ``app.core`` imports nothing else from ``app``.
"""
