"""The Dask side of ``run.py optimize --cluster``: the same tasks as the process pool, on a Dask cluster.

``Client.get_executor()`` is a ``concurrent.futures`` executor, so the optimiser submits to it as
to its process pool. A worker plugin plays the pool's initializer: it hands every worker (and any
that joins later) the run's settings and bars once, and takes them back at the end. Workers must
import this project (start them from its folder, or with it on ``PYTHONPATH``); a worker runs
one backtest at a time, so start them with ``--nthreads 1`` and as many as there are cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import Executor
from typing import Any

from supervisors.errors import StartupError
from supervisors.optimize import WorkerPayload, forget_run, setup_worker

try:
    from distributed import Client
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # an optional package: say how to get it
    raise StartupError("--cluster needs Dask's distributed package: pip install 'distributed==2026.8.0'") from exc

__all__ = ["CONNECT_TIMEOUT_S", "WORKER_WAIT_S", "RunData", "dask_executor"]

CONNECT_TIMEOUT_S = 10.0
"""How long to try to reach the scheduler."""

WORKER_WAIT_S = 30.0
"""How long to wait for a first worker when the scheduler has none."""


class RunData(WorkerPlugin):
    """Hand a run's settings and bars to every worker; take them back when the run ends."""

    def __init__(self, run_id: str, payload: WorkerPayload) -> None:
        self.run_id, self.payload = run_id, payload

    def setup(self, worker: Any) -> None:
        """Keep the run's data in the worker (runs in the worker's main thread)."""
        setup_worker(self.run_id, self.payload)

    def teardown(self, worker: Any) -> None:
        """Drop the run's data (runs in the worker's main thread)."""
        forget_run(self.run_id)


@contextmanager
def dask_executor(address: str, run_id: str, payload: WorkerPayload) -> Iterator[tuple[Executor, int]]:
    """An executor on the Dask scheduler at ``address`` whose workers hold ``payload``, and how many
    workers there are; StartupError (one line) if the scheduler cannot be reached or has no worker."""
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise StartupError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    name = f"actortrade-optimize-{run_id}"
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise StartupError(f"the Dask scheduler at {address} has no worker (waited {WORKER_WAIT_S:g}s)") from None
        try:
            client.register_plugin(RunData(run_id, payload), name=name)
        except Exception as exc:  # Dask raises the worker's error as a plain Exception with its text
            raise StartupError(f"the Dask workers at {address} cannot take the run ({exc}); they must import this "
                               "project: start them from its folder or with it on PYTHONPATH") from None
        executor = client.get_executor(pure=False)
        try:
            yield executor, len(client.scheduler_info()["workers"])
        finally:
            executor.shutdown(wait=False)  # cancels what is left (nothing, unless interrupted)
            client.unregister_worker_plugin(name)
    finally:
        client.close()
