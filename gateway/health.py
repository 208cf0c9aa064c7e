"""The health of the pipeline as the operator console shows it (docs/storage.md#operator-console):
the gateways' MQTT client-id leases (alive or stale), the on-disk spool, what waits in dead
letters and quarantine, the scheduled jobs (their in-process state when the scheduler runs in
this process, and from the database the work they left: invalidation backlogs, the last
calibration fit, the newest map snapshot). Read-only; one snapshot per call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from civicair.core.db import Database
from civicair.core.jobs import Scheduler
from civicair.core.settings import Settings
from civicair.gateway import repository
from civicair.gateway.lease import TTL_S
from civicair.ingest.spool import spool_state


@dataclass(frozen=True, slots=True)
class Gateway:
    client_id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    age_s: float
    alive: bool  # renewed within the lease TTL


@dataclass(frozen=True, slots=True)
class SpoolState:
    directory: Path
    batches: int
    bytes: int
    corrupt: int
    oldest_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobState:
    name: str
    interval_s: float
    last_run: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Health:
    checked_at: datetime
    broker: dict[str, Any]
    gateways: tuple[Gateway, ...]
    spool: SpoolState
    dead_letters: int
    quarantine: int
    quarantine_attached: int
    jobs: tuple[JobState, ...] | None  # None: the scheduler does not run in this process
    last_seen: datetime | None
    zone_backlog: int
    mobile_backlog: int
    export_backlog: int
    last_calibration: datetime | None
    last_map_snapshot: datetime | None

    @property
    def problems(self) -> tuple[str, ...]:
        """Short keys of what needs an operator (the console's summary; web/i18n messages)."""
        out = []
        if self.broker.get("status") != "ok":
            out.append("broker")
        if not any(g.alive for g in self.gateways):
            out.append("gateway")
        if self.spool.batches or self.spool.corrupt:
            out.append("spool")
        if self.jobs and any(j.last_error for j in self.jobs):
            out.append("jobs")
        return tuple(out)


def spool_directory(settings: Settings) -> Path:
    return Path(settings.ingest_spool_dir or Path(settings.data_dir) / "spool")


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def operations_health(db: Database, settings: Settings, *, broker: dict[str, Any],
                      scheduler: Scheduler | None = None) -> Health:
    with db.engine.connect() as conn:
        leases = repository.lease_rows(conn)
        kept = repository.kept_counts(conn)
        marks = repository.pipeline_marks(conn)
        now = conn.exec_driver_sql("select now()").scalar_one()
    directory = spool_directory(settings)
    batches, size, corrupt, oldest = spool_state(directory)
    jobs = None
    if scheduler is not None:
        jobs = tuple(JobState(j.name, j.interval_s, _utc(scheduler.last_run.get(j.name)),
                              scheduler.last_error.get(j.name)) for j in scheduler.jobs)
    return Health(
        checked_at=now, broker=broker,
        gateways=tuple(Gateway(r.client_id, r.host, r.pid, r.started_at, r.heartbeat_at, float(r.age_s),
                               float(r.age_s) < TTL_S) for r in leases),
        spool=SpoolState(directory, batches, size, corrupt, _utc(oldest)),
        dead_letters=kept.dead_letters, quarantine=kept.quarantine, quarantine_attached=kept.attached, jobs=jobs,
        last_seen=marks.last_seen, zone_backlog=marks.zone_backlog, mobile_backlog=marks.mobile_backlog,
        export_backlog=marks.export_backlog, last_calibration=marks.last_calibration,
        last_map_snapshot=marks.last_map_snapshot)
