"""Export freshness (docs/open-data.md#freshness), through the scheduled job at chosen times: a new
folder gets every finished day of the current month and the month through yesterday; when a day
finishes `latest` moves to it and the month file takes it in; a calibration refit of past hours
(the real write path) rewrites that day's and that month's files; the invalidation log is the
export's own, filled by triggers for past days only, and consumed once across processes."""

from __future__ import annotations

import csv
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from civicair.calibration.repository import write_calibrated_means
from civicair.core import tables
from civicair.open_export.catalog import build_catalogue
from civicair.open_export.service import available_datasets, export_dir
from civicair.open_export.worker import CATCH_UP_DAYS, export_once, jobs, plan
from rdflib import URIRef
from rdflib.namespace import DCAT, DCTERMS

from tests.open_export.fixture import PM25, seed

D20, D21, D22, D23 = (date(2026, 11, d) for d in (20, 21, 22, 23))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def rows(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def logged(db) -> list[date]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(sa.select(tables.export_invalidations.c.day)).scalars())


def distributions(settings, now: datetime, dataset: str) -> set[str]:
    g = build_catalogue(settings, available_datasets(settings), export_dir(settings), now=now)
    ds = URIRef(f"{settings.public_base_url}/catalog/datasets/{dataset}")
    return {str(d).rsplit("#", 1)[1] for d in g.objects(ds, DCAT.distribution)}


def test_plan_of_a_new_folder_a_finished_day_and_invalidated_days() -> None:
    # a new folder: each finished day of the month, yesterday, last month and this month, today
    assert plan(date(2026, 11, 3), None, set()) == [
        ("day", date(2026, 11, 1)), ("day", date(2026, 11, 2)),
        ("month", date(2026, 10, 1)), ("month", date(2026, 11, 1)), ("day", date(2026, 11, 3))]
    # on the 1st: yesterday closes last month
    assert plan(date(2026, 12, 1), None, set()) == [
        ("day", date(2026, 11, 30)), ("month", date(2026, 11, 1)), ("month", date(2026, 12, 1)), ("day", date(2026, 12, 1))]
    assert plan(D22, D22, set()) == [("day", D22)]  # the same day again: only today
    assert plan(D23, D22, set()) == [("day", D22), ("month", date(2026, 11, 1)), ("day", D23)]
    # refitted days (and their months) join; today's own entries are today's run anyway
    assert plan(D23, D23, {date(2026, 10, 30), D20, D23}) == [
        ("day", date(2026, 10, 30)), ("day", D20), ("month", date(2026, 10, 1)), ("month", date(2026, 11, 1)),
        ("day", D23)]
    # a folder left alone for a year catches up on a bounded number of days
    runs = plan(D23, date(2025, 11, 1), set())
    assert sum(kind == "day" for kind, _ in runs) == CATCH_UP_DAYS + 1


def test_the_job_is_scheduled_by_civicair_up(settings, db) -> None:
    from civicair.runtime import collect_jobs

    (job,) = jobs(settings, db)
    assert job.name == "open_export.export" and job.interval_s == 900
    assert "open_export.export" in {j.name for j in collect_jobs(settings, db)}


@pytest.mark.db
def test_days_finish_into_latest_and_the_month_and_a_refit_rewrites_them(db, settings) -> None:
    seed(db.engine, D20, [D21, D22])
    root = export_dir(settings)
    zone = root / "zone-hourly"

    # midday on the 22nd, a new folder
    noon = at(D22, 12)
    assert export_once(settings, db, noon) > 0
    assert logged(db) == []  # the seeding's past days are handled (and the log emptied)
    assert {r["datetime_from"][:10] for r in rows(zone / "zone-hourly_2026-11.csv")} == {"2026-11-20", "2026-11-21"}
    assert (zone / "zone-hourly_2026-11-22.csv").is_file()  # today so far
    names = distributions(settings, noon, "zone-hourly")
    assert {"latest.csv", "today.csv", "zone-hourly_2026-11-20.csv", "zone-hourly_2026-11-21.csv",
            "zone-hourly_2026-11.csv"} <= names
    assert "zone-hourly_2026-11-22.csv" not in names  # the partial day is `today`, not a finished day
    g = build_catalogue(settings, available_datasets(settings), root, now=noon)
    temporal = g.value(URIRef(f"{settings.public_base_url}/catalog/datasets/zone-hourly"), DCTERMS.temporal)
    assert (str(g.value(temporal, DCAT.startDate)), str(g.value(temporal, DCAT.endDate))) == ("2026-11-01", "2026-11-22")
    assert export_once(settings, db, noon + timedelta(minutes=15)) == 0  # nothing changed

    # the 22nd finishes: latest moves to it, the month file takes it in
    night = at(D23, 0, 20)
    assert export_once(settings, db, night) > 0
    assert {r["datetime_from"][:10] for r in rows(zone / "zone-hourly_2026-11.csv")} == {
        "2026-11-20", "2026-11-21", "2026-11-22"}
    names = distributions(settings, night, "zone-hourly")
    assert "zone-hourly_2026-11-22.csv" in names and "today.csv" not in names  # no zone data yet on the 23rd
    g = build_catalogue(settings, available_datasets(settings), root, now=night)
    latest = URIRef(f"{settings.public_base_url}/catalog/datasets/zone-hourly#latest.csv")
    assert str(g.value(latest, DCAT.downloadURL)).endswith("/exports/zone-hourly/latest.csv")

    # a calibration refit changes past hours of the 20th through the calibration's own write path
    with db.engine.begin() as conn:
        hourly = tables.hourly
        past = conn.execute(sa.select(hourly).where(hourly.c.quantity == PM25, hourly.c.hour == at(D20, 10))).all()
        assert len(past) >= 3
        n = write_calibrated_means(conn, [(r.device_id, r.quantity, r.hour, r.mean * 0.5) for r in past])
        assert n == len(past)
    assert logged(db) == [D20]
    day_before = (zone / "zone-hourly_2026-11-20.csv").read_bytes()
    assert export_once(settings, db, night + timedelta(minutes=15)) > 0
    assert logged(db) == []
    assert (zone / "zone-hourly_2026-11-20.csv").read_bytes() != day_before
    month = {r["datetime_from"]: r for r in rows(zone / "zone-hourly_2026-11.csv")}
    refitted = month["2026-11-20T10:00:00Z"]
    assert refitted["calibrated"] == "true" and float(refitted["value"]) == pytest.approx(
        float(refitted["raw_mean"]) * 0.5, rel=1e-3)
    assert month["2026-11-21T10:00:00Z"]["calibrated"] == "false"  # untouched days stay as they were
    device = {(r["device"], r["datetime_from"]) for r in rows(root / "device-hourly" / "device-hourly_2026-11.csv")
              if r["calibrated"] == "true"}
    assert {t for _, t in device} == {"2026-11-20T10:00:00Z"}
    assert export_once(settings, db, night + timedelta(minutes=30)) == 0  # handled once


@pytest.mark.db
def test_two_processes_consume_an_invalidation_once(db, settings) -> None:
    seed(db.engine, D20, [D21])
    now = at(D22, 9)
    export_once(settings, db, now)
    with db.engine.begin() as conn:
        conn.execute(sa.update(tables.hourly).where(tables.hourly.c.hour == at(D21, 10))
                     .values(calibrated_mean=tables.hourly.c.mean * 2))
    assert logged(db) == [D21]
    written: list[int] = []
    barrier = threading.Barrier(2)

    def scheduler() -> None:
        barrier.wait()
        written.append(export_once(settings, db, now + timedelta(minutes=1)))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(written)[0] == 0 and sorted(written)[1] > 0  # one did the work, the other found it done
    assert logged(db) == []


@pytest.mark.db
def test_triggers_log_past_days_only(db) -> None:
    seed(db.engine, D20)
    with db.engine.begin() as conn:
        conn.execute(sa.delete(tables.export_invalidations))
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    with db.engine.begin() as conn:
        device_id = conn.execute(sa.select(tables.devices.c.id).limit(1)).scalar_one()
        conn.execute(sa.insert(tables.hourly), [
            {"device_id": device_id, "quantity": PM25, "hour": today, "n": 1, "sum": 1.0, "sum_sq": 1.0},
        ])
    assert logged(db) == []  # today's hours: today's files are rewritten on every run anyway
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.hourly), [
            {"device_id": device_id, "quantity": PM25, "hour": yesterday, "n": 1, "sum": 1.0, "sum_sq": 1.0}])
        conn.execute(sa.insert(tables.reference_readings), [
            {"station_code": "FR01011", "quantity": 4, "time": at(D21, 3), "value": 1.0, "source": "e2"}])
    assert logged(db) == sorted([yesterday.date(), D21])
    with db.engine.begin() as conn:  # deleting past rows (an erasure) changes past files too
        conn.execute(sa.delete(tables.hourly).where(tables.hourly.c.hour == at(D20, 11)))
    assert D20 in logged(db)
