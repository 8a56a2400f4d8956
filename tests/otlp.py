"""An OTLP/HTTP trace receiver for tests: ``POST /v1/traces`` with a protobuf
``ExportTraceServiceRequest``, as a collector receives it, on a free loopback port.

Spans are decoded into plain records; tests poll ``wait_for`` with a deadline, since the
service's batch processor exports them from a thread of its own.
"""

import gzip
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import wait_until

SPAN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: str  # "SERVER", "CLIENT", "INTERNAL", ...
    trace_id: str  # 32 hex digits, as in a traceparent
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: str  # "UNSET", "OK", "ERROR"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        status=span.status.StatusCode.Name(span.status.code).removeprefix(
                            "STATUS_CODE_"
                        ),
                    )
                )
    return spans


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                spans = decode(body)
                with receiver._lock:
                    receiver.requests += 1
                    receiver.spans.extend(spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass  # the test's output is not the place for a line per export

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"  # OTEL_EXPORTER_OTLP_ENDPOINT
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.received() if span.trace_id == trace_id]

    def wait_for(
        self,
        condition: Callable[[], Any],
        *,
        message: str,
        timeout: float = SPAN_TIMEOUT_S,
    ) -> Any:
        """Poll until ``condition()`` is truthy (and return it); fail after ``timeout``, naming
        the spans received by then."""

        def found() -> str:
            names = sorted({(span.name, span.trace_id[:8]) for span in self.received()})
            return f"{message}; received {names}"

        return wait_until(condition, timeout=timeout, message=found)


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def traceparent(trace_id: str, parent_id: str, *, sampled: bool = True) -> str:
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}"


def descends_from(span: ReceivedSpan, ancestor: ReceivedSpan, spans: list[ReceivedSpan]) -> bool:
    """Whether ``ancestor`` is ``span``'s parent, grandparent, ... among ``spans``."""
    by_id = {candidate.span_id: candidate for candidate in spans}
    parent = span.parent_span_id
    while parent:
        if parent == ancestor.span_id:
            return True
        parent = by_id[parent].parent_span_id if parent in by_id else ""
    return False
