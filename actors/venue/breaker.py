"""A circuit breaker: open after N consecutive failed requests to the venue, closed by a success."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CircuitBreaker"]


@dataclass(slots=True)
class CircuitBreaker:
    """Counts consecutive failures; ``open`` past ``threshold`` of them, until the next success.
    ``changed`` is set when it opens or closes and stays set until the caller, having published the
    change, clears it (requests after the one that closed it do not hide the change); it clears itself
    when the breaker opens and closes again before that (nothing to publish)."""

    threshold: int = 5
    failures: int = 0
    open: bool = False
    last_error: str = ""
    changed: bool = False

    def failed(self, error: str) -> None:
        """Record a failed request."""
        self.failures += 1
        self.last_error = error
        if not self.open and self.failures >= self.threshold:
            self.open, self.changed = True, not self.changed

    def succeeded(self) -> None:
        """Record a successful request."""
        if self.open:
            self.open, self.changed = False, not self.changed
        self.failures = 0
