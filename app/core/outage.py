"""Leaving an unreachable dependency alone for a while after it failed."""

import logging
import threading
import time


class OutageBackoff:
    """After a failure, ``allows_a_try()`` is False for ``seconds``, so requests do not each
    wait for the dependency's time-out; the first failure of an outage is logged once."""

    def __init__(self, seconds: float, *, logger: logging.Logger, message: str) -> None:
        self.seconds = seconds
        self._logger = logger
        self._message = message  # %-formatted with the seconds and the error
        self._lock = threading.Lock()
        self._until = 0.0

    def allows_a_try(self) -> bool:
        return time.monotonic() >= self._until

    def failed(self, exc: Exception) -> None:
        with self._lock:
            first = self.allows_a_try()
            self._until = time.monotonic() + self.seconds
        if first:
            self._logger.warning(self._message, self.seconds, exc)

    def reset(self) -> None:
        self._until = 0.0
