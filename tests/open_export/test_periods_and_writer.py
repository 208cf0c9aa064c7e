"""Pure parts of the export: periods and file names, encodings, atomic writes, datapackage."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import frictionless
import pyarrow.parquet as pq
import pytest
from civicair.core.errors import InvalidParameter
from civicair.core.files import write_atomic
from civicair.open_export.datasets import DEFAULT_DATASETS, select_datasets
from civicair.open_export.package import build_datapackage, file_digest
from civicair.open_export.periods import (
    latest_day,
    parse_file_name,
    period_for,
    published,
    today_file,
)
from civicair.open_export.writer import (
    encode_csv,
    encode_parquet,
    normalise_rows,
    remove_stale_temporaries,
)
from hypothesis import given
from hypothesis import strategies as st

STATIONS = next(d for d in DEFAULT_DATASETS if d.id == "reference-stations")


def test_month_period_crosses_year() -> None:
    p = period_for("month", date(2026, 12, 17))
    assert (p.start, p.end, p.label) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "2026-12")


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)), st.sampled_from(["day", "month"]))
def test_file_names_round_trip(day: date, kind: str) -> None:
    p = period_for(kind, day)  # type: ignore[arg-type]
    ef = parse_file_name(p.file_name("zone-hourly", "csv"))
    assert ef is not None and ef.period == p and ef.dataset == "zone-hourly"


@pytest.mark.parametrize("name", ["../etc/passwd", "zone-hourly_2026-13-01.csv", "x_2026-01-01.exe",
                                  ".zone-hourly_2026-01-01.csv.1.tmp", "Zone_2026-01.csv"])
def test_foreign_names_are_not_export_files(name: str) -> None:
    assert parse_file_name(name) is None


def _files(*names: str) -> list:
    return [f for n in names if (f := parse_file_name(n)) is not None]


def test_latest_is_the_last_finished_day_and_today_the_day_in_progress() -> None:
    files = _files("d_2026-10-31.csv", "d_2026-10.csv", "d_2026-11-01.csv", "d_2026-11-02.csv", "d_2026-11.csv")
    morning = datetime(2026, 11, 2, 0, 10, tzinfo=UTC)
    assert latest_day(files, morning).name == "d_2026-11-01.csv"  # never the partial day, never a month
    assert today_file(files, morning).name == "d_2026-11-02.csv"
    # on the first day of a month, latest is the previous month's last day; no file for today yet
    first = datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert latest_day(files, first).name == "d_2026-10-31.csv"
    assert today_file(_files("d_2026-10-31.csv"), first) is None
    assert latest_day(_files("d_2026-11-02.csv"), morning) is None


def test_published_files_list_the_finished_days_of_the_current_month() -> None:
    files = _files("d_2026-10-30.csv", "d_2026-10-31.csv", "d_2026-10.csv", "d_2026-11-01.csv", "d_2026-11-02.csv",
                   "d_2026-11-03.csv", "d_2026-11.csv", "d_2026-11-01.parquet")
    now = datetime(2026, 11, 3, 14, 30, tzinfo=UTC)
    got = {(p.name, p.role, p.until) for p in published(files, now)}
    start = datetime(2026, 11, 3, tzinfo=UTC)
    assert got == {
        ("latest.csv", "latest", start), ("today.csv", "today", now),
        ("d_2026-11-01.csv", "day", datetime(2026, 11, 2, tzinfo=UTC)), ("d_2026-11-02.csv", "day", start),
        ("d_2026-10.csv", "month", datetime(2026, 11, 1, tzinfo=UTC)),
        ("d_2026-11.csv", "month", start),  # the current month holds the finished days
        ("latest.parquet", "latest", datetime(2026, 11, 2, tzinfo=UTC)),
        ("d_2026-11-01.parquet", "day", datetime(2026, 11, 2, tzinfo=UTC)),
    }  # October's days are in October's month file, not listed one by one


def test_unknown_dataset_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="unknown dataset 'nope'"):
        select_datasets(["nope"])
    assert [d.id for d in select_datasets(["devices", "zone-hourly"])] == ["zone-hourly", "devices"]


def _station_rows() -> list[dict]:
    t = datetime(2026, 11, 22, 10, tzinfo=UTC)
    return [
        {"station_code": "FR01011", "station_name": "Metz-Centre, \"centre\"", "network": "ATMO GRAND EST",
         "lat": 49.1193, "lon": 6.1757, "quantity": "no2", "unit": "µg/m³", "datetime_from": t,
         "datetime_to": t.replace(hour=11), "value": 21.5, "licence": None, "extra": "ignored"},
        {"station_code": "FR01011", "station_name": "Metz-Centre", "network": None, "lat": 49.1, "lon": 6.1,
         "quantity": "pm25", "unit": "µg/m³", "datetime_from": "2026-11-22T09:00:00+01:00",
         "datetime_to": t, "value": 3, "licence": "ODbL"},
    ]


def test_csv_is_plain_utf8_with_iso_utc_times_and_documented_columns() -> None:
    rows = normalise_rows(STATIONS, _station_rows())
    data = encode_csv(STATIONS, rows)
    parsed = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(parsed[0]) == list(STATIONS.column_names)
    assert {r["datetime_from"] for r in parsed} == {"2026-11-22T08:00:00Z", "2026-11-22T10:00:00Z"}
    assert any(r["station_name"] == 'Metz-Centre, "centre"' for r in parsed)
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r\n" not in data


def test_parquet_is_typed_and_carries_provenance() -> None:
    rows = normalise_rows(STATIONS, _station_rows())
    data = encode_parquet(STATIONS, rows, {"civicair:portal_url": "https://portal/x"})
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.field("value").type == "double"
    assert str(table.schema.field("datetime_from").type) in ("timestamp[s, tz=UTC]", "timestamp[ms, tz=UTC]")
    assert table.schema.metadata[b"civicair:portal_url"] == b"https://portal/x"
    assert sorted(table.column("value").to_pylist()) == [3.0, 21.5]
    assert table.column("datetime_from").to_pylist()[0] == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0).compression == "ZSTD"
    assert encode_parquet(STATIONS, rows, {"civicair:portal_url": "https://portal/x"}) == data


def test_write_atomic_is_idempotent_and_leaves_nothing_on_failure(tmp_path) -> None:
    path = tmp_path / "d" / "f.csv"
    assert write_atomic(path, b"one\n") is True
    mtime = path.stat().st_mtime_ns
    assert write_atomic(path, b"one\n") is False
    assert path.stat().st_mtime_ns == mtime

    def boom(tmp) -> None:
        assert tmp.read_bytes() == b"two, complete\n"  # the temp file is complete before the rename
        raise OSError("disk pulled out")

    with pytest.raises(OSError, match="disk pulled out"):
        write_atomic(path, b"two, complete\n", before_replace=boom)
    assert path.read_bytes() == b"one\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.csv"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    stale = tmp_path / "d" / ".f.csv.999999999.tmp"
    stale.write_bytes(b"half")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists()


def test_datapackage_validates_with_frictionless(tmp_path) -> None:
    rows = normalise_rows(STATIONS, _station_rows())
    folder = tmp_path / STATIONS.id
    write_atomic(folder / "reference-stations_2026-11-22.csv", encode_csv(STATIONS, rows))
    write_atomic(folder / "reference-stations_2026-11-22.parquet", encode_parquet(STATIONS, rows, {}))
    meta = {"name": "t", "title": "T", "homepage": "http://x", "catalogue": "http://x/catalog.jsonld",
            "licences": [{"name": "etalab-2.0", "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence",
                          "title": "Licence Ouverte"}], "sources": [{"title": "s", "path": "http://x"}], "publisher": "P"}
    package, sums, sums512 = build_datapackage(tmp_path, [STATIONS], meta,
                                               homepages={STATIONS.id: "http://x/datasets/reference-stations"})
    (tmp_path / "datapackage.json").write_bytes(package)
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])
    doc = json.loads(package)
    assert [r["path"] for r in doc["resources"]] == ["reference-stations/reference-stations_2026-11-22.csv",
                                                     "reference-stations/reference-stations_2026-11-22.parquet"]
    value = next(f for f in doc["resources"][0]["schema"]["fields"] if f["name"] == "value")
    assert value["type"] == "number" and value["description_fr"]
    assert doc["homepage"] == "http://x" and doc["licenses"][0]["name"] == "etalab-2.0"
    assert doc["resources"][0]["homepage"] == "http://x/datasets/reference-stations"
    assert len(sums.decode().splitlines()) == len(sums512.decode().splitlines()) == 2
    assert len(sums512.split()[0]) == 128

    # a file that no longer matches its recorded hash fails validation
    (folder / "reference-stations_2026-11-22.csv").write_bytes(encode_csv(STATIONS, rows[:1]))
    assert not frictionless.validate(str(tmp_path / "datapackage.json")).valid


def test_digest_cache_is_reused_only_while_the_file_is_unchanged(tmp_path) -> None:
    import hashlib
    import os

    path = tmp_path / "f.csv"
    write_atomic(path, b"abc\n")
    cache: dict = {}
    assert file_digest(path, cache) == (4, hashlib.sha256(b"abc\n").hexdigest(), hashlib.sha512(b"abc\n").hexdigest())
    st = path.stat()
    cache[str(path)][2] = "cached"  # proves the next call does not re-read the file
    assert file_digest(path, cache)[1] == "cached"
    write_atomic(path, b"xyz\n")  # same size, new content: the replace changes the mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert file_digest(path, cache)[:2] == (4, hashlib.sha256(b"xyz\n").hexdigest())
