"""Which registered sensor model measures which quantity (docs/calibration.md#sensor-types).

A device lists several models (e.g. an SDS011 for PM and a BME280 for T/RH); its *sensor type* for
a quantity is the model that measures it, so a network model is shared by devices whose PM sensor
is the same, whatever their humidity sensor. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

PM = frozenset({"pm1", "pm25", "pm10"})
CLIMATE = frozenset({"temperature", "humidity", "pressure"})
MEASURES: dict[str, frozenset[str]] = {
    "SDS011": PM - {"pm1"},
    "PMS5003": PM, "PMS7003": PM, "PMS1003": PM, "PMS3003": PM, "PMS6003": PM, "PMSA003": PM,
    "SPS30": PM, "SEN5X": PM | {"temperature", "humidity"}, "HPMA115": PM - {"pm1"}, "NEXTPM": PM,
    "BME280": CLIMATE, "BMP280": frozenset({"temperature", "pressure"}), "BME680": CLIMATE,
    "DHT22": frozenset({"temperature", "humidity"}), "SHT31": frozenset({"temperature", "humidity"}),
    "SHT3X": frozenset({"temperature", "humidity"}), "HTU21D": frozenset({"temperature", "humidity"}),
    "SCD30": frozenset({"temperature", "humidity"}),
    "MICS6814": frozenset({"no2"}), "NO2-B43F": frozenset({"no2"}), "OX-B431": frozenset({"o3", "no2"}),
}
# The US-EPA correction (Barkjohn et al. 2021) was derived for Plantower PMS sensors (PurpleAir).
PLANTOWER = frozenset({"PMS1003", "PMS3003", "PMS5003", "PMS6003", "PMS7003", "PMSA003"})


def sensor_type(models: Sequence[str], quantity: str) -> str:
    """The model measuring `quantity`: the first known one that does, else the first model not in
    the table (it may measure anything), else "" (no model measures it)."""
    names = [m.strip().upper() for m in models if m and m.strip()]
    for m in names:
        if quantity in MEASURES.get(m, frozenset()):
            return m
    for m in names:
        if m not in MEASURES:
            return m
    return ""


def epa_eligible(models: Sequence[str], quantity: str) -> bool:
    return quantity == "pm25" and sensor_type(models, quantity) in PLANTOWER
