"""Child processes in process groups of their own, and what /proc says about them.

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

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
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


# --- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the third (state) on; None if the process is gone.
    The second field (comm) may contain spaces and parentheses, hence the split after ")"."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


# Indexes into _stat_fields (proc(5) field number minus 3).
_STATE, _PPID, _UTIME, _STIME, _CUTIME, _CSTIME = 0, 1, 11, 12, 13, 14


def children(parent: int, *, include_zombies: bool = False) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or int(fields[_PPID]) != parent:
            continue
        if include_zombies or fields[_STATE] != "Z":
            found.add(int(entry.name))
    return found


def children_cpu_ticks(parent: int) -> int:
    """CPU time (user + system, all threads) of ``parent``'s children, in clock ticks: live
    ones (and zombies) from their own stat, reaped ones (recycled workers) from the parent's
    cutime + cstime. A worker reaped between the two reads can be missed: workers recycle a
    few times a minute at most, so this is noise."""
    parent_fields = _stat_fields(parent)
    if parent_fields is None:
        return 0
    ticks = int(parent_fields[_CUTIME]) + int(parent_fields[_CSTIME])
    for pid in children(parent, include_zombies=True):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[_UTIME]) + int(fields[_STIME])
    return ticks


def ticks_to_ms(ticks: int) -> float:
    return ticks * 1000 / CLOCK_TICKS_PER_S


def resident_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None
