"""Air-quality index bands (docs/open-data.md#index-bands): the one home of these numbers for the
API's map and widget endpoints, the pages and the scripts (which read `scales_document()` as the
server renders it). Pure: no I/O, no settings, no clock.

Rule: upper bounds in µg/m³ are inclusive, so band i (1-based) holds upper[i-2] < c ≤ upper[i-1];
above the last bound is the last band; 0 means no published value.

- `eaqi`: the European Air Quality Index of the EEA, 2024 revision (ETC HE Report 2024/17, table
  5.2), on hourly concentrations of every pollutant. The map's default scale.
- `atmo`: the thresholds of the French ATMO index (arrêté du 10 juillet 2020, annexe I). The
  official index is daily (PM as daily means, NO2/O3 as daily maxima of hourly values) and only
  the AASQA may call theirs "indice ATMO": civicair's hourly values are shown "d'après les seuils
  de l'indice ATMO", never as the index itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Band:
    key: str
    colour: str  # fill, "#RRGGBB"
    text: str  # text colour on that fill (contrast ≥ 4.5:1)
    label_en: str
    label_fr: str


@dataclass(frozen=True, slots=True)
class Scale:
    id: str
    name_en: str
    name_fr: str
    source: str
    note_en: str
    note_fr: str
    averaging: Mapping[str, str]  # what the thresholds are defined on, per quantity
    upper: Mapping[str, tuple[float, ...]]  # five inclusive upper bounds per quantity
    bands: tuple[Band, ...]  # six bands


NO_DATA = Band("no_data", "#D9D9D9", "#000000", "No published value", "Pas de valeur publiée")

EAQI = Scale(
    id="eaqi",
    name_en="European Air Quality Index (EEA, 2024 revision)",
    name_fr="Indice européen de la qualité de l'air (AEE, révision 2024)",
    source="ETC HE Report 2024/17, EEA's revision of the European air quality index bands, table 5.2 "
           "(hourly concentrations; WHO 2021 guidelines, Directive (EU) 2024/2881)",
    note_en="Hourly means of citizen sensors on the EEA's bands; not an official index.",
    note_fr="Moyennes horaires de capteurs citoyens sur les classes de l'AEE ; pas un indice officiel.",
    averaging={"pm25": "1h", "pm10": "1h", "no2": "1h", "o3": "1h"},
    upper={"pm25": (5, 15, 50, 90, 140), "pm10": (15, 45, 120, 195, 270),
           "no2": (10, 25, 60, 100, 150), "o3": (60, 100, 120, 160, 180)},
    bands=(
        Band("good", "#50F0E6", "#000000", "Good", "Bon"),
        Band("fair", "#50CCAA", "#000000", "Fair", "Correct"),
        Band("moderate", "#F0E641", "#000000", "Moderate", "Modéré"),
        Band("poor", "#FF5050", "#000000", "Poor", "Mauvais"),
        Band("very_poor", "#960032", "#FFFFFF", "Very poor", "Très mauvais"),
        Band("extremely_poor", "#7D2181", "#FFFFFF", "Extremely poor", "Extrêmement mauvais"),
    ),
)

ATMO = Scale(
    id="atmo",
    name_en="Based on the thresholds of the French ATMO index (arrêté du 10 juillet 2020)",
    name_fr="D'après les seuils de l'indice ATMO (arrêté du 10 juillet 2020)",
    source="Arrêté du 10 juillet 2020 relatif à l'indice de la qualité de l'air ambiant "
           "(NOR TRER2017892A), annexe I; colours of Atmo France",
    note_en="The official ATMO index is daily and published by the regional air-quality agency (AASQA); "
            "these are hourly citizen-sensor means read against its thresholds (hourly PM reads more "
            "severe than the daily index).",
    note_fr="L'indice ATMO officiel est journalier et publié par l'association agréée (AASQA) ; ce sont "
            "des moyennes horaires de capteurs citoyens lues d'après ses seuils (les PM horaires "
            "paraissent plus sévères que l'indice journalier).",
    averaging={"pm25": "24h", "pm10": "24h", "no2": "1h-max", "o3": "1h-max"},
    upper={"pm25": (10, 20, 25, 50, 75), "pm10": (20, 40, 50, 100, 150),
           "no2": (40, 90, 120, 230, 340), "o3": (50, 100, 130, 240, 380)},
    bands=(
        Band("bon", "#50F0E6", "#000000", "Good", "Bon"),
        Band("moyen", "#50CCAA", "#000000", "Fair", "Moyen"),
        Band("degrade", "#F0E641", "#000000", "Degraded", "Dégradé"),
        Band("mauvais", "#FF5050", "#000000", "Poor", "Mauvais"),
        Band("tres_mauvais", "#960032", "#FFFFFF", "Very poor", "Très mauvais"),
        Band("extremement_mauvais", "#872181", "#FFFFFF", "Extremely poor", "Extrêmement mauvais"),
    ),
)

SCALES: Mapping[str, Scale] = {s.id: s for s in (EAQI, ATMO)}
DEFAULT_SCALE = "eaqi"
QUANTITIES = ("pm25", "pm10", "no2", "o3")  # the quantities both scales define


def scale_of(scale_id: str) -> Scale:
    """The scale named `scale_id`; KeyError naming the known ones otherwise."""
    try:
        return SCALES[scale_id]
    except KeyError:
        raise KeyError(f"unknown index scale {scale_id!r}; one of {sorted(SCALES)}") from None


def band(scale: Scale, quantity: str, value: float | None) -> int:
    """Band 1..6 of `value` (µg/m³) for `quantity`; 0 without a value or for a quantity the
    scale does not define."""
    if value is None or not math.isfinite(value):
        return 0
    upper = scale.upper.get(quantity)
    if upper is None:
        return 0
    for i, bound in enumerate(upper):
        if value <= bound:
            return i + 1
    return len(upper) + 1


def band_info(scale: Scale, b: int) -> Band:
    """The band numbered `b` (0: no published value)."""
    return NO_DATA if b == 0 else scale.bands[b - 1]


def ranges(scale: Scale, quantity: str) -> list[tuple[float | None, float | None]]:
    """(lower exclusive, upper inclusive) per band; None for an open end."""
    upper = scale.upper[quantity]
    lows: list[float | None] = [None, *upper]
    highs: list[float | None] = [*upper, None]
    return list(zip(lows, highs, strict=True))


def _band_doc(b: Band) -> dict[str, Any]:
    return {"key": b.key, "colour": b.colour, "text": b.text, "label": {"en": b.label_en, "fr": b.label_fr}}


def scales_document() -> dict[str, Any]:
    """Every scale as JSON-ready data (what the pages and scripts read)."""
    return {
        "rule": "upper bounds inclusive: band i holds upper[i-2] < value <= upper[i-1]; 0 = no published value",
        "default": DEFAULT_SCALE,
        "no_data": _band_doc(NO_DATA),
        "scales": {
            s.id: {"id": s.id, "name": {"en": s.name_en, "fr": s.name_fr}, "source": s.source,
                   "note": {"en": s.note_en, "fr": s.note_fr}, "averaging": dict(s.averaging),
                   "upper": {q: list(u) for q, u in s.upper.items()},
                   "bands": [_band_doc(b) for b in s.bands]}
            for s in SCALES.values()
        },
    }
