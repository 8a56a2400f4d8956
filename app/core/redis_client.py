"""The service's Redis clients (login budgets, the general request budget, the read cache).

Short time-outs: every caller has somewhere else to go when Redis does not answer (the
database, or no cache), so a slow Redis must cost a request little more than its absence.
"""

import redis

REDIS_TIMEOUT_S = 0.25


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
