"""OpenAPI response examples of the public endpoints (shown in /docs)."""

from __future__ import annotations

from typing import Any

_META = {
    "name": "civicair open data",
    "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)",
    "licence_url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "attribution": "civicair contributors and volunteers",
    "portal_url": "https://data.example-metropole.fr/datasets",
}


def _env(results: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {"meta": {**_META, "found": len(results), **meta}, "results": results}


_DEVICE = {
    "pseudonym": "3f9a1c0b7d2e", "kind": "fixed", "sensor_type": "SDS011", "sensor_models": ["SDS011", "BME280"],
    "h3_cell": "891f8d7a49bffff", "coordinates": {"latitude": 48.583148, "longitude": 7.747882},
    "status": "reliable", "stars": 4, "first_seen": "2025-03-01T10:00:00+00:00",
    "last_seen": "2026-01-12T08:55:00+00:00", "quantities": ["pm25", "pm10", "humidity"], "has_series": True,
}
DEVICES = _env([_DEVICE], limit=100, cursor=None)
DEVICE = _env([_DEVICE])

_POINT = {
    "period": {"datetime_from": "2026-01-12T08:00:00+00:00", "datetime_to": "2026-01-12T09:00:00+00:00",
               "interval": "hour"},
    "value": 11.8, "calibrated": True, "calibrated_mean": 11.8, "raw_mean": 14.2, "unit": "µg/m³",
    "n_readings": 24,
    "coverage": {"expected_count": 1, "observed_count": 1, "percent_complete": 100.0},
    "summary": {"min": 12.0, "median": None, "max": 17.5, "mean": 14.2, "sd": 1.4},
    "flags": {"flagged_readings": 0, "out_of_range": 0, "clock": 0, "sensor_error": 0, "no_position": 0},
}
_SERIES_META = {"quantity": "pm25", "unit": "µg/m³", "interval": "hour",
                "datetime_from": "2026-01-05T09:00:00+00:00", "datetime_to": "2026-01-12T09:00:00+00:00",
                "limit": 1000, "cursor": None}
SERIES = _env([_POINT], device="3f9a1c0b7d2e", **_SERIES_META)
ZONE_SERIES = _env(
    [{**_POINT, "n_devices": 4, "coverage": {"expected_count": 4, "observed_count": 4, "percent_complete": 100.0}}],
    zone="67482", k_anonymity=3, suppressed=2,
    suppression="zone-hours with fewer than 3 distinct devices are not published", **_SERIES_META)
ZONES = _env([
    {"id": "67482", "name": "Strasbourg (example outline)", "kind": "admin", "n_devices": 12,
     "properties": {"insee": "67482"}},
    {"id": "891f8d7a49bffff", "name": "H3 cell 891f8d7a49bffff", "kind": "h3", "n_devices": 3,
     "properties": {"resolution": 9}},
], h3_resolution=9, k_anonymity=3)
MOBILE = _env([{
    "h3_cell": "891f8d7a49bffff",
    "period": {"datetime_from": "2026-01-12T08:00:00+00:00", "datetime_to": "2026-01-12T09:00:00+00:00",
               "interval": "hour"},
    "value": 16.3, "unit": "µg/m³", "n_devices": 3, "n_readings": 41,
    "summary": {"min": 9.1, "max": 25.0, "mean": 16.3},
    "coordinates": {"latitude": 48.583148, "longitude": 7.747882},
}], quantity="pm25", unit="µg/m³", h3_resolution=9, k_anonymity=3, limit=1000, cursor=None)
STATIONS = _env([{
    "code": "FR01011", "name": "Metz-Centre", "network": "ATMO GRAND EST", "station_type": "urban background",
    "coordinates": {"latitude": 49.1196, "longitude": 6.1816}, "pollutants": ["pm25", "pm10", "no2", "o3"],
    "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)", "attribution": "ATMO Grand Est / LCSQA",
}])
STATION_SERIES = _env([{k: v for k, v in _POINT.items() if k not in ("raw_mean", "flags")}],
                      station="FR01011", note="official reference data, published under its own licence",
                      **_SERIES_META)
QUANTITIES = _env([{"name": "pm25", "unit": "µg/m³", "label": "Particulate matter < 2.5 µm",
                    "plausible_range": [0, 1000]}])
LICENCES = _env([{"id": "civicair", "name": "Licence Ouverte / Open Licence 2.0 (Etalab)",
                  "url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
                  "attribution": "civicair contributors and volunteers", "applies_to": "devices, zones, mobile"}])
