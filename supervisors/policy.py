"""Restart decisions, as in Erlang/OTP: strategies, child types, intensity, backoff.

Pure logic: no threads, no pykka. The supervisor actor asks ``on_exit`` what to do when a
child ends and carries the decision out.

- Strategies: ``one_for_one`` restarts only the child that ended; ``one_for_all`` restarts every
  child; ``rest_for_one`` restarts the child and every child started after it.
- Child types: ``permanent`` is always restarted; ``transient`` only after an abnormal exit
  (an exception); ``temporary`` never. A stuck child is not restarted at all (see
  supervisors.supervisor): the system stops.
- Intensity: more than ``max_restarts`` restarts within ``within_s`` seconds and the supervisor
  gives up (escalates to its parent).
- Backoff: a child that fails again before it processed anything since its last restart waits
  ``backoff_min_s * 2**(n-1)`` (n = consecutive such failures), capped at ``backoff_max_s``, with
  +/- ``jitter`` relative noise, so a child failing on every message does not spin.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CHILD_TYPES", "STRATEGIES", "Decision", "RestartPolicy", "SupervisorPolicy"]

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
CHILD_TYPES = ("permanent", "transient", "temporary")


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How one supervisor restarts its children."""

    strategy: str = "one_for_one"
    max_restarts: int = 10
    within_s: float = 60.0
    backoff_min_s: float = 0.01
    backoff_max_s: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; valid: {', '.join(STRATEGIES)}")
        if self.max_restarts < 0 or self.within_s <= 0:
            raise ValueError("max_restarts must be >= 0 and within_s > 0")
        if not 0 <= self.backoff_min_s <= self.backoff_max_s:
            raise ValueError("need 0 <= backoff_min_s <= backoff_max_s")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a child ended.

    ``action`` is ``restart`` (the ``targets``, in start order, after ``delay_s``), ``ignore``
    (leave the child stopped) or ``escalate`` (give up: stop everything, tell the parent).
    """

    action: str
    targets: tuple[str, ...] = ()
    delay_s: float = 0.0
    reason: str = ""


class SupervisorPolicy:
    """The restart bookkeeping of one supervisor."""

    def __init__(self, policy: RestartPolicy, children: list[tuple[str, str]],
                 clock: Callable[[], float], rng: random.Random | None = None) -> None:
        for name, kind in children:
            if kind not in CHILD_TYPES:
                raise ValueError(f"child {name}: unknown type {kind!r}; valid: {', '.join(CHILD_TYPES)}")
        self.policy = policy
        self.order = [name for name, _ in children]
        self.kinds = dict(children)
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.restart_times: deque[float] = deque()
        self.consecutive = dict.fromkeys(self.order, 0)

    def on_exit(self, name: str, abnormal: bool, made_progress: bool = True) -> Decision:
        """Decide what follows the end of child ``name``.

        ``made_progress`` says whether the child handled anything since it was last started;
        if not, this failure counts towards its backoff.
        """
        kind = self.kinds[name]
        if kind == "temporary" or (kind == "transient" and not abnormal):
            return Decision("ignore", reason=f"{name} is {kind}; not restarted")
        now = self.clock()
        window = self.policy.within_s
        times = self.restart_times
        times.append(now)
        while times and now - times[0] > window:
            times.popleft()
        if len(times) > self.policy.max_restarts:
            return Decision("escalate", reason=(
                f"{len(times)} restarts within {window:g}s exceeds the limit of {self.policy.max_restarts}"))
        self.consecutive[name] = 1 if made_progress else self.consecutive[name] + 1
        targets = self._targets(name)
        return Decision("restart", targets, self._delay(self.consecutive[name]))

    def _targets(self, name: str) -> tuple[str, ...]:
        strategy = self.policy.strategy
        if strategy == "one_for_one":
            return (name,)
        if strategy == "one_for_all":
            return tuple(self.order)
        return tuple(self.order[self.order.index(name):])

    def _delay(self, failures: int) -> float:
        p = self.policy
        if failures <= 1:
            return 0.0
        base = min(p.backoff_max_s, p.backoff_min_s * 2 ** (failures - 2))
        return min(p.backoff_max_s, max(0.0, base * (1.0 + p.jitter * (2.0 * self.rng.random() - 1.0))))
