import asyncio
import contextvars
import threading

import pytest
from opentelemetry import trace

from app.core.threads import in_thread

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_runs_off_the_event_loop_thread_with_the_callers_context() -> None:
    def where(suffix: str, *, prefix: str) -> tuple[str, str]:
        return threading.current_thread().name, f"{prefix}{request_id.get()}{suffix}"

    async def call() -> tuple[str, str]:
        request_id.set("abc")
        return await in_thread(where, "!", prefix=">")

    thread_name, seen = asyncio.run(call())

    assert thread_name.startswith("blocking")
    assert seen == ">abc!"


def test_the_calls_exception_reaches_the_caller() -> None:
    def fail() -> None:
        raise LookupError("no row")

    with pytest.raises(LookupError, match="no row"):
        asyncio.run(in_thread(fail))


def test_a_cancelled_caller_waits_until_the_call_has_finished() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def hold_the_session() -> None:
        started.set()
        release.wait(5)
        finished.append("done")

    async def scenario() -> list[str]:
        task = asyncio.create_task(in_thread(hold_the_session))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the thread, not abandoning it
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished

    assert asyncio.run(scenario()) == ["done"]


def test_the_callers_span_is_current_in_the_thread() -> None:
    # Tracing depends on it: SQL and Redis spans started in the thread are the request's children.
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x5B8EFFF798038103D269B633813FC60C, span_id=0xEEE19B7EC3C1B174, is_remote=True
        )
    )

    async def call() -> trace.Span:
        with trace.use_span(span):
            return await in_thread(trace.get_current_span)

    assert asyncio.run(call()) is span
