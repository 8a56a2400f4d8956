"""The benchmark's knobs, read from BENCH_* environment variables (bench/README.md)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
BACKENDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


class SettingsError(ValueError):
    """A BENCH_* variable has a value the benchmark cannot use."""


@dataclass(frozen=True, slots=True)
class BenchSettings:
    duration_s: int = 10
    rounds: int = 3
    warmup_s: int = 2
    threads: int = 2
    connections: int = 32
    login_connections: int = 4
    timeout_s: int = 10
    workers: int = 2
    # Gunicorn's worker recycling (GUNICORN_MAX_REQUESTS); 0 turns it off (bench/README.md).
    max_requests: int = 0
    items: int = 1000
    # The app's read cache (CACHE_URL); the yardstick has none.
    cache_url: str = ""
    backends: tuple[str, ...] = BACKENDS
    scenarios: tuple[str, ...] = ()  # empty: all of them
    postgres_url: str = DEFAULT_POSTGRES_URL
    results_dir: Path = BENCH_DIR / "results"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], known_scenarios: tuple[str, ...]
    ) -> "BenchSettings":
        default = cls()
        backends = _names(environ, "BENCH_BACKENDS", BACKENDS, BACKENDS)
        scenarios = _names(environ, "BENCH_SCENARIOS", known_scenarios, known_scenarios)
        return cls(
            duration_s=_int(environ, "BENCH_DURATION", default.duration_s),
            rounds=_int(environ, "BENCH_ROUNDS", default.rounds),
            warmup_s=_int(environ, "BENCH_WARMUP", default.warmup_s, minimum=0),
            threads=_int(environ, "BENCH_THREADS", default.threads),
            connections=_int(environ, "BENCH_CONNECTIONS", default.connections),
            login_connections=_int(environ, "BENCH_LOGIN_CONNECTIONS", default.login_connections),
            timeout_s=_int(environ, "BENCH_TIMEOUT", default.timeout_s),
            workers=_int(environ, "BENCH_WORKERS", default.workers),
            max_requests=_int(environ, "BENCH_MAX_REQUESTS", default.max_requests, minimum=0),
            items=_int(environ, "BENCH_ITEMS", default.items),
            cache_url=environ.get("BENCH_CACHE_URL", ""),
            backends=backends,
            scenarios=scenarios,
            postgres_url=environ.get("BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
            results_dir=Path(environ.get("BENCH_RESULTS_DIR") or default.results_dir),
        )

    def connections_for(self, scenario: str) -> int:
        return self.login_connections if scenario == "login" else self.connections

    def estimated_seconds(self, servers_per_scenario: Sequence[int]) -> int:
        """Load time alone (no boot, seeding or clean-up), for the banner."""
        per_server = self.warmup_s + self.rounds * self.duration_s
        return len(self.backends) * sum(servers_per_scenario) * per_server


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def _names(
    environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: tuple[str, ...]
) -> tuple[str, ...]:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    chosen = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise SettingsError(f"{name}={raw!r}: choose among {', '.join(allowed)}")
    return chosen
