"""Vocabulary of the SensorThings entities (docs/sensorthings.md#vocabulary): observed-property
definitions (EEA pollutant vocabulary, CF standard names through NERC P07), units in UCUM,
sensor datasheets. Pure."""

from __future__ import annotations

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
GEOJSON = "application/geo+json"
EEA = "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/"
P07 = "http://vocab.nerc.ac.uk/collection/P07/current/"

DEFINITIONS = {
    "pm1": EEA + "6002", "pm25": EEA + "6001", "pm10": EEA + "5", "no2": EEA + "8", "o3": EEA + "7",
    "temperature": P07 + "CFSN0023/", "humidity": P07 + "CFSN0413/", "pressure": P07 + "CFSN0015/",
}
_CONCENTRATION = {"name": "microgram per cubic metre", "symbol": "ug/m3",
                  "definition": "http://dd.eionet.europa.eu/vocabulary/uom/concentration/ug.m-3"}
UNITS = {
    "pm1": _CONCENTRATION, "pm25": _CONCENTRATION, "pm10": _CONCENTRATION, "no2": _CONCENTRATION,
    "o3": _CONCENTRATION,
    "temperature": {"name": "degree Celsius", "symbol": "Cel", "definition": "http://qudt.org/vocab/unit/DEG_C"},
    "humidity": {"name": "percent", "symbol": "%", "definition": "http://qudt.org/vocab/unit/PERCENT"},
    "pressure": {"name": "hectopascal", "symbol": "hPa", "definition": "http://qudt.org/vocab/unit/HectoPA"},
}
LABELS = {"pm1": "PM1", "pm25": "PM2.5", "pm10": "PM10", "no2": "NO2", "o3": "O3", "temperature": "Temperature",
          "humidity": "Relative humidity", "pressure": "Pressure"}
# Manufacturers' product pages (not verified from this machine, which has no internet access: check
# before a release); a model without one gets a text description as its metadata.
DATASHEETS = {
    "SDS011": "http://www.inovafitness.com/en/a/chanpinzhongxin/95.html",
    "SPS30": "https://sensirion.com/products/catalog/SPS30",
    "PMS5003": "https://www.plantower.com/en/products_33/74.html",
    "BME280": "https://www.bosch-sensortec.com/products/environmental-sensors/humidity-sensors-bme280/",
}
