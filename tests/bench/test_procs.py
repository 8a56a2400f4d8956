"""The bench's CPU time of a server is its workers', live and reaped (a recycled worker's time
must not vanish from the run it was spent in)."""

import sys
import time

from bench.procs import children, children_cpu_s, resident_kib, spawn, stop_group
from bench.settings import ROOT

# A "master" that runs one worker to completion (and reaps it), then starts a second one that
# keeps running; each worker burns about BURN_S of CPU first.
BURN_S = 0.3
MASTER = f"""
import subprocess, sys, time
burn = "import time\\nend = time.process_time() + {BURN_S}\\nwhile time.process_time() < end: pass"
subprocess.run([sys.executable, "-c", burn], check=True)
live = subprocess.Popen([sys.executable, "-c", burn + "\\ntime.sleep(60)"])
print("ready", flush=True)
time.sleep(60)
"""


def test_cpu_time_counts_live_and_reaped_workers() -> None:
    with spawn([sys.executable, "-c", MASTER], env={}, cwd=ROOT) as master:  # closes the pipe
        try:
            assert master.stdout is not None
            assert master.stdout.readline().strip() == b"ready"
            (worker,) = children(master.pid)
            deadline = time.monotonic() + 10
            while children_cpu_s(master.pid) < 2 * BURN_S * 0.9 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert children_cpu_s(master.pid) >= 2 * BURN_S * 0.9
            size = resident_kib(worker)
            assert size is not None
            assert size > 0
        finally:
            stop_group(master, grace_s=1.0)  # the master and its worker
    assert children(master.pid) == set()
    assert children_cpu_s(master.pid) == 0.0
