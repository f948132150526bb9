"""How long to wait before restarting a process that died, and when to give up."""

from __future__ import annotations

INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 60.0  # a process that stayed up this long starts over at INITIAL_DELAY_S
MAX_FAILED_STARTS = 5  # consecutive restarts that never reached readiness


class RestartBackoff:
    """Exponential back-off: 0.5 s, 1 s, 2 s ... up to 30 s; reset by a long enough run."""

    def __init__(
        self,
        initial_s: float = INITIAL_DELAY_S,
        maximum_s: float = MAX_DELAY_S,
        stable_after_s: float = STABLE_AFTER_S,
    ) -> None:
        self._initial_s = initial_s
        self._maximum_s = maximum_s
        self._stable_after_s = stable_after_s
        self._restarts = 0

    def next_delay(self, uptime_s: float) -> float:
        """The delay before the next restart of a process that ran for uptime_s."""
        if uptime_s >= self._stable_after_s:
            self._restarts = 0
        delay = min(self._initial_s * 2.0**self._restarts, self._maximum_s)
        self._restarts += 1
        return delay
