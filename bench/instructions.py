"""Instructions per request, in-process: ``python -m bench.instructions [scenario ...] [--n N]``.

Runs ``bench.profile_app`` under ``valgrind --tool=callgrind`` with instrumentation switched
on only around N requests (after a warm-up), and prints the instructions per request of each
scenario. Unlike CPU time on this machine (±10 % between runs of the same code), the count
repeats to within a fraction of a percent, so it shows whether a change buys the ~5 % it must.
Thread-pool calls run inline, so a thread hop's own cost is not in the count. Needs valgrind
(Debian's package); uses a scratch SQLite database unless ``DATABASE_URL`` is set.

``--tracing`` measures with traces on (app.core.tracing): every request sampled, its spans
encoded and sent over OTLP/HTTP to a receiver in this process, which is not measured and
drops them.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Not imported from bench.profile_app: importing it sets DATABASE_URL to its own scratch
# database, which every scenario's process would then share.
SCENARIOS = ("item_get", "item_list", "item_create", "health")


class _DropSpans(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)  # an empty ExportTraceServiceResponse: all accepted
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def span_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that accepts every export and keeps nothing."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DropSpans)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def instructions_per_request(
    scenario: str, requests: int, *, env: dict[str, str] | None = None
) -> float:
    with tempfile.TemporaryDirectory(prefix="callgrind-") as directory:
        out = Path(directory) / "callgrind.out"
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.profile_app",
                scenario,
                str(requests),
                "--instructions",
            ],
            check=False,
            capture_output=True,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONHASHSEED": "0"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"{scenario} failed under valgrind:\n{result.stderr[-3000:]}")
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):  # callgrind's "summary:" line may read 0
                return int(line.split()[1]) / requests
    raise RuntimeError(f"no instruction total in callgrind's output for {scenario}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["item_get", "item_list", "item_create"])
    parser.add_argument("--n", type=int, default=300, help="measured requests per scenario")
    parser.add_argument(
        "--tracing", action="store_true", help="traces on, exported to a sink that drops them"
    )
    args = parser.parse_args()
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            raise SystemExit(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    # Whatever the calling shell has: tracing is on exactly when --tracing says so.
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    with span_sink() if args.tracing else nullcontext(None) as endpoint:
        if endpoint:
            env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_TRACES_SAMPLER="always_on")
        for scenario in args.scenarios:
            count = instructions_per_request(scenario, args.n, env=env)
            sys.stdout.write(f"{scenario:<12} {count / 1e6:6.3f} M instructions per request\n")


if __name__ == "__main__":
    main()
