"""Instructions per request, in-process: ``python -m bench.instructions [scenario ...] [--n N]``.

Runs ``bench.profile_app`` under ``valgrind --tool=callgrind`` with instrumentation switched
on only around N requests (after a warm-up), and prints the instructions per request of each
scenario. Unlike CPU time on this machine (±10 % between runs of the same code), the count
repeats to within a fraction of a percent, so it shows whether a change buys the ~5 % it must.
Thread-pool calls run inline, so a thread hop's own cost is not in the count. Needs valgrind
(Debian's package); uses a scratch SQLite database unless ``DATABASE_URL`` is set.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Not imported from bench.profile_app: importing it sets DATABASE_URL to its own scratch
# database, which every scenario's process would then share.
SCENARIOS = ("item_get", "item_list", "item_create", "health")


def instructions_per_request(scenario: str, requests: int) -> float:
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
            env={**os.environ, "PYTHONHASHSEED": "0"},
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
    args = parser.parse_args()
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            raise SystemExit(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        count = instructions_per_request(scenario, args.n)
        sys.stdout.write(f"{scenario:<12} {count / 1e6:6.3f} M instructions per request\n")


if __name__ == "__main__":
    main()
