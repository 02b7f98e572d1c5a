"""A circuit breaker: open after N consecutive failed requests to the venue, closed by a success."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CircuitBreaker"]


@dataclass(slots=True)
class CircuitBreaker:
    """Counts consecutive failures; ``open`` past ``threshold`` of them, until the next success.
    ``changed`` is set by the call that opened or closed it (the caller publishes that once)."""

    threshold: int = 5
    failures: int = 0
    open: bool = False
    last_error: str = ""
    changed: bool = False

    def failed(self, error: str) -> None:
        """Record a failed request."""
        self.failures += 1
        self.last_error = error
        self.changed = not self.open and self.failures >= self.threshold
        self.open = self.open or self.changed

    def succeeded(self) -> None:
        """Record a successful request."""
        self.changed = self.open
        self.failures, self.open = 0, False
