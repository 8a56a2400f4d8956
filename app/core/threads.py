"""The process's one thread pool: every blocking call (database, Redis, password hashing)
runs here, off the event loop.

A plain ``ThreadPoolExecutor`` rather than Starlette's ``run_in_threadpool`` (AnyIO's thread
pool): AnyIO detects the event loop library, takes a capacity limiter and opens a cancel scope
on every call, a sizeable part of a hop's CPU (bench/README.md), and a request makes several
hops. Requests are admitted to database work at most DB_POOL_SIZE at a time per worker
(``app.api.routing.database_admission``), so that many threads never make one admitted
request wait for another.
"""

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from app.core.config import get_settings

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:  # created on first use: in the worker process, after the fork
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=get_settings().DB_POOL_SIZE, thread_name_prefix="blocking"
                )
    return _executor


async def in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in a thread of the pool, with the caller's context variables.

    Like AnyIO's default, a cancelled caller still waits for the call to finish before the
    cancellation goes on: the call may hold the request's session, which the caller's clean-up
    then rolls back and closes, and a session must never be used by two threads at once.
    """
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    future = asyncio.get_running_loop().run_in_executor(_threads(), call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()  # seen: its failure, if any, gives way to the cancellation
        raise
