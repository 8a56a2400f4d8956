"""OpenTelemetry traces over OTLP/HTTP, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set.

The SDK reads the standard ``OTEL_*`` variables itself (service name and resource attributes,
headers, timeout, compression, sampler, propagators, batch sizes); this module only decides
whether tracing runs and wires it up. The request span is FastAPI's own (``app.main`` turns it
on only when tracing runs), named by the route template; the spans below it come from the
SQLAlchemy and Redis instrumentations. Nothing here imports the SDK until tracing starts, so a
service without the variable never loads it.

Tracing starts in each worker's lifespan, after Gunicorn's fork: the batch processor's export
thread belongs to the process that created it, and a thread does not survive a fork.
"""

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# The SDK's default ("unknown_service:python") would hide which service sent the spans.
DEFAULT_SERVICE_NAME = "accounts-items-api"


def tracing_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process traces: an OTLP endpoint is set and the SDK is not disabled.

    Read from the process environment, not ``.env``: the SDK reads only the environment, so a
    ``.env`` entry would turn tracing on towards the SDK's default endpoint."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class Tracing:
    """What ``start_tracing`` set up in this process; ``stop`` exports what is left and undoes
    it (a worker stops once; in-process tests start and stop several times)."""

    def __init__(self, provider: "TracerProvider", restore_records: Callable[[], None]) -> None:
        self.provider = provider
        self._restore_records = restore_records

    def stop(self) -> None:
        global _running
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
        self._restore_records()
        self.provider.shutdown()  # exports the spans still queued, then ends the export thread
        _running = None


_running: Tracing | None = None


def start_tracing(engines: Sequence["Engine"]) -> Tracing | None:
    """Start exporting spans from this process: a tracer provider with a batch processor and
    an OTLP/HTTP exporter (both configured by the ``OTEL_*`` variables), SQL spans on
    ``engines`` and spans for every Redis command. ``None`` if tracing already runs here:
    whoever started it stops it."""
    global _running
    if _running is not None:
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"process.pid": os.getpid()})  # which worker sent a span
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    # The sampler comes from OTEL_TRACES_SAMPLER; the processor's batching from OTEL_BSP_*.
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        # Set once per process (by an earlier start, or by other code): spans would go there.
        logger.warning("Tracing not started: this process already has a tracer provider")
        provider.shutdown()
        return None
    # The instrumentation declares SQLAlchemy < 2.1 and, unless told to skip that check,
    # silently instruments nothing on 2.1 (tests/core/test_tracing.py fails if so).
    SQLAlchemyInstrumentor().instrument(
        engines=list(engines),
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),  # metrics are Prometheus's (app.core.metrics)
        skip_dep_check=True,
    )
    RedisInstrumentor().instrument(tracer_provider=provider)
    _running = Tracing(provider, _add_trace_ids_to_log_records())
    logger.info("Tracing: exporting spans over OTLP/HTTP")
    return _running


def _add_trace_ids_to_log_records() -> Callable[[], None]:
    """Give every log record made while a span is current its trace id (``trace_id``), so the
    access line and any error logged during a request lead to the request's trace; returns
    the undo."""
    from opentelemetry import trace

    previous = logging.getLogRecordFactory()

    def record_with_trace_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
        return record

    logging.setLogRecordFactory(record_with_trace_id)
    return lambda: logging.setLogRecordFactory(previous)
