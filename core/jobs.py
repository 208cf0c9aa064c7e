"""Scheduled jobs run by `civicair up` (calibration, rollups, retention, exports).

Each package contributes jobs through a `jobs(settings, db)` function in its `worker.py`;
`civicair.runtime` collects them. A job must be idempotent: several service processes may run it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[], object]
    first_delay_s: float = 5.0


class Scheduler:
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_run: dict[str, float] = {}
        self.last_error: dict[str, str] = {}
        self._run_soon = threading.Event()

    def run_soon(self) -> None:
        """Run every job at the next tick instead of waiting for its interval."""
        self._run_soon.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _loop(self) -> None:
        start = time.monotonic()
        due = {j.name: start + j.first_delay_s for j in self.jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            if self._run_soon.is_set():
                self._run_soon.clear()
                due = dict.fromkeys(due, now)
            for job in self.jobs:
                if now >= due[job.name]:
                    try:
                        job.run()
                        self.last_error.pop(job.name, None)
                    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the others
                        self.last_error[job.name] = str(exc)
                        log.warning("job %s failed: %s", job.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                    self.last_run[job.name] = time.time()
                    due[job.name] = time.monotonic() + job.interval_s
            self._stop.wait(1.0)
