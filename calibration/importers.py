"""Reference data files → typed rows (pure: bytes in, rows + line-numbered problems out).

* station lists: CSV (code, name, lat, lon, type; `,` or `;`) or GeoJSON points;
* measurements: the French LCSQA "E2" daily CSV, the EEA e-reporting CSV and the AirNow-Tech
  long-format export of US agencies (docs/calibration.md#reference-importers).

Encodings are detected (BOM, then UTF-8, then Latin-1), never assumed. Rows with validity ≤ 0 or
an empty value are ignored (counted), unsupported pollutants are skipped (counted), malformed
rows are reported with their line number and reason; one bad row never aborts a file.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.errors import InvalidInput

E2_HEADER = ["Date de début", "Date de fin", "Organisme", "code zas", "Zas", "code site", "nom site",
             "type d'implantation", "Polluant", "type d'influence", "discriminant", "Réglementaire",
             "type d'évaluation", "procédure de mesure", "type de valeur", "valeur", "valeur brute",
             "unité de mesure", "taux de saisie", "couverture temporelle", "couverture de données",
             "code qualité", "validité"]
EEA_COLUMNS = {"AirQualityStationEoICode", "AirPollutant", "Concentration", "UnitOfMeasurement",
               "DatetimeBegin", "Validity"}
POLLUTANTS = {"PM2.5": "pm25", "PM10": "pm10", "NO2": "no2", "O3": "o3"}
AIRNOWTECH_COLUMNS = {"site aqs", "param", "date (utc)", "time (utc)", "value", "unit", "qc code"}
# AirNow-Tech parameter names: the AQS parameter code follows PM names (88101 FRM/FEM, 88502 other)
AIRNOWTECH_PARAMS = {"PM2.5-88101": "PM2.5", "PM2.5-88502": "PM2.5", "PM10-81102": "PM10", "NO2": "NO2", "O3": "O3"}
# to µg/m³ at 20 °C / 1013 hPa (docs/calibration.md#validity-and-units)
UNIT_FACTORS = {"µg-m3": 1.0, "µg/m3": 1.0, "ug/m3": 1.0, "µg/m³": 1.0, "mg-m3": 1000.0, "mg/m3": 1000.0,
                "UG/M3": 1.0}
PPB_FACTORS = {"no2": 1.88, "o3": 1.96}


@dataclass(frozen=True)
class StationRow:
    code: str
    name: str
    lat: float | None = None
    lon: float | None = None
    station_type: str | None = None
    network: str | None = None


@dataclass(frozen=True)
class ReferenceRow:
    station_code: str
    quantity: int
    time: datetime  # hour start, UTC
    value: float
    validity: int | None
    source: str


@dataclass
class ParseResult:
    format: str
    encoding: str
    rows: list = field(default_factory=list)
    stations: dict[str, StationRow] = field(default_factory=dict)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    ignored: Counter = field(default_factory=Counter)  # reason → count (not errors)
    lines: int = 0

    def summary(self) -> dict[str, object]:
        return {"format": self.format, "encoding": self.encoding, "lines": self.lines, "rows": len(self.rows),
                "bad_rows": len(self.bad_rows), "ignored": dict(self.ignored)}


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): BOM first (UTF-8/UTF-16), else strict UTF-8, else Latin-1 (cp1252). A
    UTF-16 byte-order mark before bytes that are not UTF-16 is refused (InvalidInput)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the file starts with a UTF-16 byte-order mark but is not UTF-16 "
                               f"(byte {exc.start}): save it again as UTF-8 or UTF-16") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"


def _norm(name: str) -> str:
    return name.strip().strip('"').lower()


def detect_format(text: str) -> str:
    """e2 | eea | airnowtech | stations_csv | stations_geojson | sensor_community | generic."""
    head = text.lstrip()[:4096]
    if head.startswith("{"):
        return "stations_geojson"
    first = head.splitlines()[0] if head else ""
    cols = {_norm(c) for c in first.replace(";", ",").split(",")}
    if {"date de début", "code site", "polluant", "valeur"} <= cols:
        return "e2"
    if {c.lower() for c in EEA_COLUMNS} <= cols:
        return "eea"
    if AIRNOWTECH_COLUMNS <= cols:
        return "airnowtech"
    if {"sensor_id", "sensor_type", "timestamp"} <= cols:
        return "sensor_community"
    if "code" in cols and ("lat" in cols or "latitude" in cols):
        return "stations_csv"
    return "generic"


def _reader(text: str) -> tuple[list[str], Iterator[list[str]]]:
    """Header and the data rows (one record per physical line; a line the csv module rejects
    becomes an empty-marked row ``["\x00"]`` so it is reported, not fatal)."""
    lines = text.splitlines()
    first = lines[0] if lines else ""
    delim = ";" if first.count(";") > first.count(",") else ","

    def parse(line: str) -> list[str]:
        try:
            return next(csv.reader([line], delimiter=delim), [])
        except csv.Error:
            return [BROKEN]

    header = [h.strip() for h in parse(first)] if lines else []
    return header, (parse(line) for line in lines[1:])


BROKEN = "\x00broken"


def _data_rows(reader: Iterator[list[str]], res: ParseResult, width: int | None = None
               ) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) of the non-blank data rows, counting every line in `res.lines`; a row
    with fewer than `width` fields is reported in `res.bad_rows` and skipped."""
    for lineno, row in enumerate(reader, start=2):
        res.lines += 1
        if not row or not any(c.strip() for c in row):
            continue
        if width is not None and len(row) < width:
            res.bad_rows.append((lineno, f"expected {width} fields, got {len(row)}"))
            continue
        yield lineno, row


def _float(s: str) -> float | None:
    s = s.strip()
    if not s:
        return None
    return float(s.replace(",", "."))


# --- E2 -----------------------------------------------------------------------------------------
def parse_e2(data: bytes) -> ParseResult:
    text, enc = decode_text(data)
    res = ParseResult("e2", enc)
    header, reader = _reader(text)
    idx = {_norm(h): i for i, h in enumerate(header)}
    need = ["date de début", "code site", "polluant", "valeur", "unité de mesure", "validité"]
    missing = [n for n in need if n not in idx]
    if missing:
        raise InvalidInput(f"not an E2 file: missing column(s) {', '.join(missing)}")
    for lineno, row in _data_rows(reader, res, width=len(header)):

        def col(name: str) -> str:
            return row[idx[name]].strip()  # noqa: B023 - used within this iteration

        code = col("code site")
        if not code:
            res.bad_rows.append((lineno, "empty station code"))
            continue
        try:
            start = datetime.strptime(col("date de début"), "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            res.bad_rows.append((lineno, f"bad date {col('date de début')!r} (want YYYY/MM/DD HH:MM:SS)"))
            continue
        if code not in res.stations:
            res.stations[code] = StationRow(code, row[idx["nom site"]].strip() if "nom site" in idx else code,
                                            station_type=_station_type(row, idx),
                                            network=row[idx["organisme"]].strip() if "organisme" in idx else None)
        _add(res, lineno, code, col("polluant"), col("valeur"), col("unité de mesure"), col("validité"), start, "e2")
    return res


def _station_type(row: list[str], idx: dict[str, int]) -> str | None:
    parts = [row[idx[k]].strip() for k in ("type d'implantation", "type d'influence") if k in idx]
    return " / ".join(p for p in parts if p) or None


def _add(res: ParseResult, lineno: int, code: str, pollutant: str, value: str, unit: str, validity: str,
         start: datetime, source: str) -> None:
    try:
        v = _float(value)
        valid = int(float(validity)) if validity.strip() else None
    except ValueError:
        res.bad_rows.append((lineno, f"bad number in value {value!r} or validity {validity!r}"))
        return
    if v is None:
        res.ignored["empty value"] += 1
        return
    if valid is not None and valid <= 0:
        res.ignored["validity <= 0"] += 1
        return
    quantity = POLLUTANTS.get(pollutant.strip())
    if quantity is None:
        res.ignored[f"pollutant {pollutant.strip() or '(empty)'} not used"] += 1
        return
    u = unit.strip()
    if u in UNIT_FACTORS:
        v *= UNIT_FACTORS[u]
    elif u.lower() == "ppb" and quantity in PPB_FACTORS:
        v *= PPB_FACTORS[quantity]
    else:
        res.bad_rows.append((lineno, f"unknown unit {u!r} for {pollutant}"))
        return
    res.rows.append(ReferenceRow(code, QUANTITY_BY_NAME[quantity].code, start, v, valid, source))


# --- EEA ----------------------------------------------------------------------------------------
def parse_eea(data: bytes) -> ParseResult:
    text, enc = decode_text(data)
    res = ParseResult("eea", enc)
    header, reader = _reader(text)
    idx = {h.strip(): i for i, h in enumerate(header)}
    missing = sorted(EEA_COLUMNS - set(idx))
    if missing:
        raise InvalidInput(f"not an EEA e-reporting file: missing column(s) {', '.join(missing)}")
    for lineno, row in _data_rows(reader, res, width=len(header)):
        code = row[idx["AirQualityStationEoICode"]].strip()
        if not code:
            res.bad_rows.append((lineno, "empty AirQualityStationEoICode"))
            continue
        if "AveragingTime" in idx and row[idx["AveragingTime"]].strip().lower() not in ("hour", "hourly", ""):
            res.ignored[f"averaging time {row[idx['AveragingTime']].strip()} not hourly"] += 1
            continue
        try:
            start = parse_iso_utc(row[idx["DatetimeBegin"]])
        except ValueError:
            res.bad_rows.append((lineno, f"bad DatetimeBegin {row[idx['DatetimeBegin']]!r}"))
            continue
        if code not in res.stations:
            res.stations[code] = StationRow(code, code)
        _add(res, lineno, code, row[idx["AirPollutant"]], row[idx["Concentration"]],
             row[idx["UnitOfMeasurement"]], row[idx["Validity"]], start, "eea")
    return res


# --- AirNow-Tech ---------------------------------------------------------------------------------
def parse_airnowtech(data: bytes) -> ParseResult:
    """The long-format CSV AirNow-Tech exports (one row per site, parameter and hour): hour-beginning
    UTC times in `Date (UTC)` (M/D/YYYY) and `Time (UTC)` (H:MM); rows with `QC Code` ≠ 0 are
    ignored; parameters other than PM2.5, PM10, NO2 and O3 are counted as ignored."""
    text, enc = decode_text(data)
    res = ParseResult("airnowtech", enc)
    header, reader = _reader(text)
    idx = {_norm(h): i for i, h in enumerate(header)}
    missing = sorted(AIRNOWTECH_COLUMNS - set(idx))
    if missing:
        raise InvalidInput(f"not an AirNow-Tech file: missing column(s) {', '.join(missing)}")
    for lineno, row in _data_rows(reader, res, width=len(header)):

        def col(name: str) -> str:
            return row[idx[name]].strip()  # noqa: B023 - used within this iteration

        code = col("site aqs")
        if not code:
            res.bad_rows.append((lineno, "empty Site AQS code"))
            continue
        try:
            start = datetime.strptime(f"{col('date (utc)')} {col('time (utc)')}", "%m/%d/%Y %H:%M").replace(tzinfo=UTC)
        except ValueError:
            res.bad_rows.append((lineno, f"bad date/time {col('date (utc)')!r} {col('time (utc)')!r} (want M/D/YYYY H:MM)"))
            continue
        if col("qc code") not in ("0", ""):
            res.ignored["QC code not 0"] += 1
            continue
        if code not in res.stations:
            res.stations[code] = StationRow(code, row[idx["site"]].strip() if "site" in idx else code,
                                            network=row[idx["agency"]].strip() if "agency" in idx else None)
        param = col("param")
        _add(res, lineno, code, AIRNOWTECH_PARAMS.get(param, param), col("value"), col("unit"), "1", start, "airnowtech")
    return res


def parse_iso_utc(s: str) -> datetime:
    """ISO-8601 (also 'YYYY-MM-DD HH:MM:SS +01:00'); UTC when no offset is given."""
    s = s.strip().replace(" +", "+").replace(" -", "-")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


# --- stations -----------------------------------------------------------------------------------
def parse_stations(data: bytes) -> ParseResult:
    text, enc = decode_text(data)
    fmt = detect_format(text)
    res = ParseResult(fmt, enc)
    if fmt == "stations_geojson":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"not valid GeoJSON: {exc}") from None
        for i, feat in enumerate(doc.get("features", []), start=1):
            res.lines += 1
            props = feat.get("properties") or {}
            geom = feat.get("geometry") or {}
            code = str(props.get("code") or "").strip()
            coords = geom.get("coordinates") if geom.get("type") == "Point" else None
            if not code or not coords or len(coords) < 2:
                res.bad_rows.append((i, "feature without code or Point geometry"))
                continue
            res.rows.append(StationRow(code, str(props.get("name") or code), float(coords[1]), float(coords[0]),
                                       props.get("type"), props.get("network")))
        return res
    header, reader = _reader(text)
    idx = {_norm(h): i for i, h in enumerate(header)}
    lat_k = "lat" if "lat" in idx else "latitude"
    lon_k = "lon" if "lon" in idx else ("lng" if "lng" in idx else "longitude")
    if "code" not in idx or lat_k not in idx or lon_k not in idx:
        raise InvalidInput("station list needs columns code, name, lat, lon (type optional)")
    for lineno, row in _data_rows(reader, res):
        try:
            code = row[idx["code"]].strip()
            lat, lon = _float(row[idx[lat_k]]), _float(row[idx[lon_k]])
        except (IndexError, ValueError):
            res.bad_rows.append((lineno, "missing field or bad coordinate"))
            continue
        if not code or lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            res.bad_rows.append((lineno, "empty code or coordinates out of range"))
            continue
        name = row[idx["name"]].strip() if "name" in idx and idx["name"] < len(row) else code
        typ = row[idx["type"]].strip() if "type" in idx and idx["type"] < len(row) else None
        net = row[idx["network"]].strip() if "network" in idx and idx["network"] < len(row) else None
        res.rows.append(StationRow(code, name or code, lat, lon, typ or None, net or None))
    return res


def parse_reference(data: bytes, fmt: str = "auto") -> ParseResult:
    if fmt == "auto":
        fmt = detect_format(decode_text(data)[0])
    if fmt == "e2":
        return parse_e2(data)
    if fmt == "eea":
        return parse_eea(data)
    if fmt == "airnowtech":
        return parse_airnowtech(data)
    raise InvalidInput(f"unrecognised reference file format ({fmt}); expected an E2, EEA or AirNow-Tech CSV")

