"""Child processes in process groups of their own, and their CPU time and memory (psutil).

Every command the benchmark starts gets a new session (``start_new_session``), so Ctrl-C in
the terminal reaches only the runner, and the runner's clean-up kills each group whole
(a Gunicorn master and its workers, wrk and its threads) even when it fails halfway.
"""

import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO

import psutil  # type: ignore[import-untyped]

ZOMBIE: str = psutil.STATUS_ZOMBIE
TERM_GRACE_S = 10.0
KILL_GRACE_S = 5.0


class CommandError(RuntimeError):
    """A command the benchmark needs failed; the message carries its output."""


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout: IO[bytes] | int = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_group(process: subprocess.Popen[bytes], *, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the process's group, wait up to ``grace_s``, then SIGKILL whatever is left
    (workers can outlive their master). Signals to the runner are held off meanwhile."""
    with signals_deferred():
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
        _signal_group(process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_GRACE_S)


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def run_command(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout_s: float) -> str:
    """Run to completion and return the output (stdout and stderr); raise ``CommandError`` on
    failure or time-out. The group is killed whatever happens."""
    process = spawn(argv, env=env, cwd=cwd)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CommandError(f"{argv[0]} did not finish within {timeout_s:.0f} s") from None
    finally:
        stop_group(process, grace_s=1.0)
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise CommandError(f"{' '.join(argv)} exited with {process.returncode}:\n{text}")
    return text


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP to the runner: unwinds like Ctrl-C, so clean-up runs."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C (SIGINT, Python's KeyboardInterrupt), unless
    they are ignored (``nohup make bench``)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _interrupt)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Block SIGINT, SIGTERM and SIGHUP for the duration: a second Ctrl-C must not cut a
    clean-up short and leave servers or databases behind. They are delivered afterwards."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --- process statistics ---------------------------------------------------------------------


def children(parent: int) -> set[int]:
    """Live children of ``parent`` (exited ones not yet reaped left out); empty if it is gone."""
    try:
        found = psutil.Process(parent).children()
    except psutil.NoSuchProcess:
        return set()
    return {child.pid for child in found if _is_live(child)}


def _is_live(process: psutil.Process) -> bool:
    try:
        status: str = process.status()
    except psutil.NoSuchProcess:
        return False
    return status != ZOMBIE


def children_cpu_s(parent: int) -> float:
    """CPU time (user + system, all threads) of ``parent``'s children, in seconds: live ones (and
    exited ones not yet reaped) from their own counters, reaped ones (recycled workers) from the
    parent's counters of its waited-for children. A worker reaped between the two reads can be
    missed: workers recycle a few times a minute at most, so this is noise."""
    try:
        process = psutil.Process(parent)
        times = process.cpu_times()
        found = process.children()
    except psutil.NoSuchProcess:
        return 0.0
    total: float = times.children_user + times.children_system
    for child in found:
        with suppress(psutil.NoSuchProcess):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def resident_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB, None if it is gone."""
    try:
        rss: int = psutil.Process(pid).memory_info().rss
    except psutil.NoSuchProcess:
        return None
    return rss // 1024
