"""Test helpers: waiting on conditions, the CLI as a subprocess, control requests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from actors.control.client import request

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Re-check ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        pause.wait(0.02)


def run_cli(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python run.py ARGS`` to completion."""
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def start_cli(*args: str, cwd: Path = ROOT) -> subprocess.Popen[str]:
    """Start ``python run.py ARGS`` in the background."""
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def ctl(endpoint: str, cmd: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """One control request."""
    return request(endpoint, {"cmd": cmd, **args}, timeout)


def wait_for_control(endpoint: str, process: subprocess.Popen[str] | None = None, timeout: float = 20.0) -> None:
    """Wait until a system answers ``ping`` on ``endpoint``."""
    def answered() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}")
        try:
            return bool(ctl(endpoint, "ping", timeout=0.5).get("ok"))
        except TimeoutError:
            return False
    wait_until(answered, timeout, f"control socket {endpoint}")


class FilledAtOnce:
    """A rule driven as an account that fills every decision at once would drive it: the
    position flips with each signal. Lets a rule's signals be checked without an executor."""

    def __init__(self, rule: Any, long: bool = False) -> None:
        self.rule, self.long = rule, long

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rule, name)

    def update(self, frame: Any) -> tuple[np.ndarray, list]:
        """The signal column (+1 buy, -1 sell) and the signals of ``frame``."""
        decider = self.rule.decider(frame)
        column = np.zeros(len(frame), dtype=np.int8)
        signals = []
        i = decider.first(0, float(self.long))
        while i < len(frame):
            signal = decider.decide(i, float(self.long))
            if signal is not None:
                self.long = signal.side == "buy"
                column[i] = 1 if self.long else -1
                signals.append(signal)
            i = decider.first(i + 1, float(self.long))
        return column, signals


class Scripted:
    """A decider that gives fixed signals at fixed bars whatever the position (as a strategy that
    ignores its position would), so the executor's own checks can be tested."""

    asks_while_open = True

    def __init__(self, signals: dict[int, Any]) -> None:
        self.signals = dict(sorted(signals.items()))

    def first(self, start: int, position: float) -> int:
        """The next scripted bar at or after ``start``."""
        return next((i for i in self.signals if i >= start), 1 << 62)

    def decide(self, i: int, position: float) -> Any:
        """The signal scripted at bar ``i``."""
        return self.signals.get(i)

    def slice(self, start: int, stop: int) -> Scripted:
        """The script of bars ``start:stop``, renumbered from 0."""
        return Scripted({i - start: s for i, s in self.signals.items() if start <= i < stop})
