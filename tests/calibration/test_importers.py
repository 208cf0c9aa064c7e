"""Reference importers on the real published layouts: the real E2 excerpt, an EEA e-reporting
file, station lists (CSV, GeoJSON); Latin-1 and BOM encodings; invalid rows reported with their
line numbers; re-import changes nothing. Hypothesis: no input crashes the parsers."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from civicair.calibration.importers import (
    E2_HEADER,
    decode_text,
    detect_format,
    parse_e2,
    parse_eea,
    parse_reference,
    parse_stations,
)
from civicair.calibration.service import import_reference_file, import_station_file
from civicair.core import tables
from civicair.core.errors import InvalidInput
from hypothesis import given, settings
from hypothesis import strategies as st

E2_HEAD = ";".join(E2_HEADER)
E2_ROW = ("2021/10/22 {h:02d}:00:00;2021/10/22 {h1:02d}:00:00;ATMO GRAND EST;FR44ZAG02;ZAG METZ;FR01011;{name};"
          "Urbaine;{pol};Fond;A;Oui;mesures fixes;Auto;moyenne horaire validée;{v};{v};{unit};;;;A;{valid}")
EEA_HEAD = ("Countrycode,Namespace,AirQualityNetwork,AirQualityStation,AirQualityStationEoICode,SamplingPoint,"
            "SamplingProcess,Sample,AirPollutant,AirPollutantCode,AveragingTime,Concentration,UnitOfMeasurement,"
            "DatetimeBegin,DatetimeEnd,Validity,Verification")
EEA_ROW = ("FR,FR.LCSQA-INERIS.AQ,NET-FR044A,STA-FR01011,{code},SPO-FR01011_6001,SPP,SAM,{pol},"
           "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/6001,{avg},{v},{unit},"
           "2019-01-01 {h:02d}:00:00 +01:00,2019-01-01 {h1:02d}:00:00 +01:00,{valid},1")


def e2(rows: list[dict]) -> str:
    defaults = {"name": "Metz-Centre", "pol": "PM2.5", "v": "12.5", "unit": "µg-m3", "valid": "1"}
    return "\n".join([E2_HEAD] + [E2_ROW.format(**{**defaults, **r, "h1": r["h"] + 1}) for r in rows]) + "\n"


def test_real_e2_excerpt(shared_data) -> None:
    data = (shared_data / "FR_E2_2025-01-01_excerpt.csv").read_bytes()
    assert detect_format(decode_text(data)[0]) == "e2"
    res = parse_e2(data)
    assert res.encoding == "utf-8" and res.bad_rows == []
    by_q: dict[int, int] = {}
    for r in res.rows:
        by_q[r.quantity] = by_q.get(r.quantity, 0) + 1
    assert by_q == {2: 24, 3: 24, 4: 24, 5: 24}  # PM2.5, PM10, NO2, O3 of Metz-Centre
    assert res.ignored["validity <= 0"] + res.ignored["empty value"] == 24  # the invalid CO rows
    assert res.ignored["pollutant NO not used"] == 24
    assert res.rows[0].time.tzinfo is not None and res.rows[0].time.hour == 0
    assert set(res.stations) == {"FR01011", "FR02008"}
    assert res.stations["FR01011"].network == "ATMO GRAND EST"


def test_latin1_bom_and_invalid_rows_are_reported_with_line_numbers() -> None:
    text = e2([{"h": 0, "name": "Sélestat"}, {"h": 1, "v": "abc"}, {"h": 2, "valid": "-1"}, {"h": 3, "v": ""},
               {"h": 4, "unit": "furlongs"}, {"h": 5, "pol": "PM10", "v": "3,5"}])
    text += "2021/13/45 00:00:00;x\n"  # short row
    text += E2_ROW.format(h=6, h1=7, name="x", pol="NO2", v="10", unit="ppb", valid="1").replace(
        "2021/10/22 06", "22/10/2021 06") + "\n"
    latin = text.encode("latin-1", errors="replace").replace("µ".encode("latin-1"), b"\xb5")
    for data, enc in ((latin, "cp1252"), (b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig")):
        res = parse_e2(data)
        assert res.encoding == enc
        assert [r.value for r in res.rows] == [12.5, 3.5]
        assert res.stations["FR01011"].name == "Sélestat"
        lines = [n for n, _ in res.bad_rows]
        assert lines == [3, 6, 8, 9], res.bad_rows
        assert "bad number" in res.bad_rows[0][1] and "unknown unit" in res.bad_rows[1][1]
        assert "bad date" in res.bad_rows[3][1]
        assert res.ignored == {"validity <= 0": 1, "empty value": 1}


def test_eea_file_hourly_rows_in_utc() -> None:
    rows = [EEA_ROW.format(code="FR01011", pol="PM2.5", avg="hour", v="10.5", unit="µg/m3", h=1, h1=2, valid=1),
            EEA_ROW.format(code="FR01011", pol="NO2", avg="hour", v="20", unit="ppb", h=1, h1=2, valid=1),
            EEA_ROW.format(code="FR01011", pol="PM10", avg="day", v="20", unit="µg/m3", h=1, h1=2, valid=1),
            EEA_ROW.format(code="FR01011", pol="O3", avg="hour", v="50", unit="µg/m3", h=2, h1=3, valid=-1),
            EEA_ROW.format(code="", pol="O3", avg="hour", v="50", unit="µg/m3", h=2, h1=3, valid=1)]
    data = ("\n".join([EEA_HEAD, *rows]) + "\n").encode()
    res = parse_reference(data)
    assert res.format == "eea"
    assert [(r.quantity, r.value, r.time) for r in res.rows] == [
        (2, 10.5, datetime(2019, 1, 1, 0, tzinfo=UTC)), (4, pytest.approx(37.6), datetime(2019, 1, 1, 0, tzinfo=UTC))]
    assert res.bad_rows == [(6, "empty AirQualityStationEoICode")]
    assert res.ignored["validity <= 0"] == 1 and sum(res.ignored.values()) == 2
    with pytest.raises(InvalidInput):
        parse_eea(b"a,b,c\n1,2,3\n")


def test_station_lists_csv_and_geojson() -> None:
    csv_data = "code;name;lat;lon;type\nFR01011;Metz-Centre;49,1196;6,1808;urban background\nX;bad;95;0;\n".encode(
        "latin-1")
    res = parse_stations(csv_data)
    assert [(s.code, s.lat, s.lon, s.station_type) for s in res.rows] == [("FR01011", 49.1196, 6.1808, "urban background")]
    assert res.bad_rows == [(3, "empty code or coordinates out of range")]
    gj = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "FR02008", "name": "Port de Bouc", "type": "industrial"},
         "geometry": {"type": "Point", "coordinates": [4.98, 43.40]}},
        {"type": "Feature", "properties": {"name": "no code"}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}
    res = parse_stations(json.dumps(gj).encode())
    assert [(s.code, s.lat, s.lon) for s in res.rows] == [("FR02008", 43.40, 4.98)]
    assert len(res.bad_rows) == 1


def test_a_utf16_mark_before_bytes_that_are_not_utf16_is_a_clear_error() -> None:
    # a lone high surrogate (utf-16-be d800) and an odd byte count: what hypothesis once found
    for blob in (b"\xfe\xff\xd8\x00\x00a", b"\xff\xfe" + "a,b\n".encode("utf-16-le") + b"\x00"):
        with pytest.raises(InvalidInput, match="UTF-16 byte-order mark"):
            parse_reference(blob)
    good = b"\xff\xfe" + E2_HEAD.encode("utf-16-le")
    assert parse_reference(good).encoding == "utf-16"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parsers_never_crash_on_garbage(blob: bytes) -> None:
    for data in (blob, E2_HEAD.encode() + b"\n" + blob, EEA_HEAD.encode() + b"\n" + blob):
        try:
            res = parse_reference(data)
        except InvalidInput:
            continue
        assert len(res.rows) + len(res.bad_rows) + sum(res.ignored.values()) <= res.lines


@pytest.mark.db
def test_import_into_database_is_idempotent(db, tmp_path, shared_data) -> None:
    path = shared_data / "FR_E2_2025-01-01_excerpt.csv"
    first = import_reference_file(db, path)
    assert first.written == 96
    again = import_reference_file(db, path)
    assert again.written == 0
    stations = tmp_path / "stations.csv"
    stations.write_text("code,name,lat,lon,type\nFR01011,Metz-Centre,49.1196,6.1808,urban background\n")
    assert import_station_file(db, stations).written == 1
    assert import_station_file(db, stations).written == 0
    changed = tmp_path / "FR_E2_changed.csv"
    changed.write_text(e2([{"h": 0, "v": "99.0"}]).replace("2021/10/22", "2025/01/01"))
    assert import_reference_file(db, changed).written == 1  # a corrected value is updated
    with db.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(tables.reference_readings)).scalar()
        st_row = conn.execute(sa.select(tables.reference_stations).where(
            tables.reference_stations.c.code == "FR01011")).one()
        v = conn.execute(sa.select(tables.reference_readings.c.value).where(
            tables.reference_readings.c.quantity == 2,
            tables.reference_readings.c.time == datetime(2025, 1, 1, tzinfo=UTC))).scalar()
    assert n == 96 and v == 99.0
    assert st_row.lat == pytest.approx(49.1196) and st_row.network == "ATMO GRAND EST"
    assert set(st_row.pollutants) == {"pm25", "pm10", "no2", "o3"}


def test_airnowtech_reference_file_is_recognised_and_read(shared_data) -> None:
    from civicair.calibration.importers import detect_format, parse_reference

    data = (shared_data / "airnowtech_example_reference_data.csv").read_bytes()
    assert detect_format(data.decode()) == "airnowtech"
    res = parse_reference(data)
    by_q = Counter(r.quantity for r in res.rows)
    assert by_q == {2: 730, 4: 704, 5: 685}  # PM2.5, NO2, O3 with QC code 0
    assert res.ignored["QC code not 0"] == 6 and res.ignored["pollutant TEMP not used"] == 735
    st = res.stations["370630099"]
    assert st.name == "Burdens Creek" and st.network == "OAQ"
    no2 = next(r for r in res.rows if r.quantity == 4)
    assert no2.time.isoformat() == "2019-08-01T05:00:00+00:00" and no2.value == pytest.approx(3 * 1.88)
