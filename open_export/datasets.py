"""The published datasets: ids, bilingual titles and descriptions, keywords, columns.

Pure declarations, no I/O. Each `Dataset` names its rows provider (open_export.providers), the
public API endpoint that serves the same data, and a column dictionary (type, unit, FR/EN
descriptions) from which the CSV header, the Parquet schema, the frictionless table schema and
the catalogue are all derived. `select_datasets` applies the operator's `export_datasets` setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from civicair.core.errors import InvalidParameter

# frictionless field types used by our columns
TYPES = ("string", "integer", "number", "datetime", "boolean")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # one of TYPES
    description_en: str
    description_fr: str
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True, slots=True)
class Dataset:
    id: str
    title_en: str
    title_fr: str
    description_en: str
    description_fr: str
    keywords_en: tuple[str, ...]
    keywords_fr: tuple[str, ...]
    columns: tuple[Column, ...]
    api_path: str | None  # public API endpoint serving the same data (accessURL)
    private_data: bool  # built from volunteers' readings: needs the privacy-reviewed API queries
    # GeoJSON geometry of a row: "h3_cell" (the cell's hexagon), "zone_id" (the zone's polygon),
    # "point:<lat column>:<lon column>", or None (no GeoJSON file)
    geometry: str | None = None
    theme: str = "ENVI"  # EU data-theme authority code
    frequency: str = "DAILY"  # EU frequency authority code
    # whose licence applies: civicair's (CIVICAIR_LICENCE_*) or the reference-station network's
    # (CIVICAIR_REFERENCE_LICENCE_*)
    licence: str = "own"

    def __post_init__(self) -> None:
        if self.licence not in ("own", "reference"):
            raise ValueError(f"dataset {self.id}: licence must be own or reference, got {self.licence!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, type_: str, en: str, fr: str, unit: str | None = None) -> Column:
    return Column(name, type_, en, fr, unit)


_QUANTITY = _c("quantity", "string", "Canonical quantity name (pm1, pm25, pm10, no2, o3, temperature, humidity, pressure)",
               "Nom canonique de la grandeur (pm1, pm25, pm10, no2, o3, temperature, humidity, pressure)")
_UNIT = _c("unit", "string", "Unit of value (µg/m³, °C, %, hPa)", "Unité de la valeur (µg/m³, °C, %, hPa)")
_FROM = _c("datetime_from", "datetime", "Start of the period (ISO 8601, UTC, inclusive)",
           "Début de la période (ISO 8601, UTC, inclus)")
_TO = _c("datetime_to", "datetime", "End of the period (ISO 8601, UTC, exclusive)",
         "Fin de la période (ISO 8601, UTC, exclu)")
_VALUE = _c("value", "number", "Mean over the period: calibrated when a calibration applies (see calibrated)",
            "Moyenne sur la période : calibrée quand une calibration s'applique (voir calibrated)", "see unit column")
_CALIBRATED = _c("calibrated", "boolean", "true when value is the calibrated mean, false when it is the raw mean",
                 "true si value est la moyenne calibrée, false si c'est la moyenne brute")
_RAW_MEAN = _c("raw_mean", "number", "Uncalibrated mean of the valid readings", "Moyenne brute (non calibrée) des mesures valides",
               "see unit column")
_N_DEVICES = _c("n_devices", "integer", "Distinct devices contributing (at least k, else the row is suppressed)",
                "Nombre de capteurs distincts (au moins k, sinon la ligne est supprimée)")
_N_READINGS = _c("n_readings", "integer", "Valid readings averaged", "Nombre de mesures valides moyennées")
_MIN = _c("min", "number", "Minimum raw reading over the period", "Minimum des mesures brutes sur la période",
          "see unit column")
_MAX = _c("max", "number", "Maximum raw reading over the period", "Maximum des mesures brutes sur la période",
          "see unit column")
_H3 = _c("h3_cell", "string", "H3 cell (resolution per the service settings, ~175 m edge at 9)",
         "Cellule H3 (résolution selon la configuration, ~175 m de côté en 9)")
_PSEUDONYM = _c("device", "string", "Public device pseudonym (HMAC, never the hardware id)",
                "Pseudonyme public du capteur (HMAC, jamais l'identifiant matériel)")

_ZONE_COLUMNS = (
    _c("zone_id", "string", "Zone id (INSEE code or H3 cell)", "Identifiant de zone (code INSEE ou cellule H3)"),
    _QUANTITY, _UNIT, _FROM, _TO, _VALUE, _CALIBRATED, _RAW_MEAN, _MIN, _MAX, _N_DEVICES, _N_READINGS,
)

_COMMON_KW_EN = ("air quality", "citizen science", "low-cost sensors")
_COMMON_KW_FR = ("qualité de l'air", "sciences participatives", "micro-capteurs")

DEFAULT_DATASETS: tuple[Dataset, ...] = (
    Dataset(
        id="zone-hourly",
        title_en="Hourly calibrated air quality per zone",
        title_fr="Qualité de l'air horaire calibrée par zone",
        description_en="Hourly calibrated means of citizen sensors per zone (administrative zones and H3 cells). "
        "Zone-hours with fewer than k distinct devices are suppressed; unreliable devices are excluded.",
        description_fr="Moyennes horaires calibrées des capteurs citoyens par zone (communes et cellules H3). "
        "Les zones-heures de moins de k capteurs distincts sont supprimées ; les capteurs non fiables sont exclus.",
        keywords_en=(*_COMMON_KW_EN, "hourly", "zones"),
        keywords_fr=(*_COMMON_KW_FR, "horaire", "zones"),
        columns=_ZONE_COLUMNS,
        api_path="/v1/zones",
        private_data=True,
        geometry="zone_id",
    ),
    Dataset(
        id="zone-daily",
        title_en="Daily calibrated air quality per zone",
        title_fr="Qualité de l'air journalière calibrée par zone",
        description_en="Daily calibrated means of citizen sensors per zone, built from the k-filtered hourly series.",
        description_fr="Moyennes journalières calibrées des capteurs citoyens par zone, à partir des séries "
        "horaires filtrées (k-anonymat).",
        keywords_en=(*_COMMON_KW_EN, "daily", "zones"),
        keywords_fr=(*_COMMON_KW_FR, "journalier", "zones"),
        columns=_ZONE_COLUMNS,
        api_path="/v1/zones",
        private_data=True,
        geometry="zone_id",
    ),
    Dataset(
        id="device-hourly",
        title_en="Hourly series of public fixed sensors",
        title_fr="Séries horaires des capteurs fixes publics",
        description_en="Hourly calibrated and raw means of each fixed sensor whose owner consented to publication, "
        "by pseudonym and H3 cell (never the exact location).",
        description_fr="Moyennes horaires calibrées et brutes de chaque capteur fixe dont le propriétaire a consenti "
        "à la publication, par pseudonyme et cellule H3 (jamais la position exacte).",
        keywords_en=(*_COMMON_KW_EN, "hourly", "sensors"),
        keywords_fr=(*_COMMON_KW_FR, "horaire", "capteurs"),
        columns=(
            _PSEUDONYM, _H3, _QUANTITY, _UNIT, _FROM, _TO, _VALUE, _CALIBRATED, _RAW_MEAN, _MIN, _MAX, _N_READINGS,
        ),
        api_path="/v1/devices",
        private_data=True,
        geometry="h3_cell",
    ),
    Dataset(
        id="mobile-cells",
        title_en="Mobile (bike) measurements per H3 cell and hour",
        title_fr="Mesures mobiles (vélo) par cellule H3 et par heure",
        description_en="Hourly aggregates of bike-mounted sensors per H3 cell, after removing trip ends and "
        "owners' privacy zones; only cell-hours with at least k distinct devices. No track is published.",
        description_fr="Agrégats horaires des capteurs embarqués sur vélo par cellule H3, hors débuts/fins de "
        "trajet et zones privées ; seules les cellules-heures d'au moins k capteurs. Aucune trace publiée.",
        keywords_en=(*_COMMON_KW_EN, "mobile", "bicycle"),
        keywords_fr=(*_COMMON_KW_FR, "mobile", "vélo"),
        columns=(_H3, _QUANTITY, _UNIT, _FROM, _TO, _VALUE, _MIN, _MAX, _N_DEVICES, _N_READINGS),
        api_path="/v1/mobile/cells",
        private_data=True,
        geometry="h3_cell",
    ),
    Dataset(
        id="devices",
        title_en="Citizen sensors (public fields)",
        title_fr="Capteurs citoyens (champs publics)",
        description_en="List of sensors by pseudonym: kind, sensor type, public H3 cell (fixed sensors only), "
        "reliability status and stars, first and last seen.",
        description_fr="Liste des capteurs par pseudonyme : type, modèle, cellule H3 publique (capteurs fixes "
        "uniquement), statut de fiabilité et étoiles, première et dernière mesure.",
        keywords_en=(*_COMMON_KW_EN, "sensors"),
        keywords_fr=(*_COMMON_KW_FR, "capteurs"),
        columns=(
            _PSEUDONYM,
            _c("kind", "string", "fixed or mobile", "fixe (fixed) ou mobile (mobile)"),
            _c("sensor_type", "string", "Sensor model", "Modèle de capteur"),
            _H3,
            _c("latitude", "number", "Centre of the public H3 cell (not the sensor's position)",
               "Centre de la cellule H3 publique (pas la position du capteur)", "degree"),
            _c("longitude", "number", "Centre of the public H3 cell (not the sensor's position)",
               "Centre de la cellule H3 publique (pas la position du capteur)", "degree"),
            _c("status", "string", "Reliability: reliable, suspect, unreliable, insufficient_data",
               "Fiabilité : reliable, suspect, unreliable, insufficient_data"),
            _c("stars", "integer", "Plausibility score (1-5)", "Score de plausibilité (1 à 5)"),
            _c("first_seen", "datetime", "First reading (UTC)", "Première mesure (UTC)"),
            _c("last_seen", "datetime", "Last reading (UTC)", "Dernière mesure (UTC)"),
        ),
        api_path="/v1/devices",
        private_data=True,
        geometry="point:latitude:longitude",
    ),
    Dataset(
        id="reference-stations",
        title_en="Reference stations: hourly official measurements",
        title_fr="Stations de référence : mesures horaires officielles",
        description_en="Hourly measurements of the official reference stations used to calibrate the sensors, "
        "as imported (E2 / EEA), with station metadata. Licence and attribution of the source network apply.",
        description_fr="Mesures horaires des stations de référence officielles servant à calibrer les capteurs, "
        "telles qu'importées (E2 / AEE), avec les métadonnées des stations. Licence et attribution du réseau source.",
        keywords_en=("air quality", "reference stations", "hourly"),
        keywords_fr=("qualité de l'air", "stations de référence", "horaire"),
        columns=(
            _c("station_code", "string", "Station code (e.g. FR01011)", "Code station (ex. FR01011)"),
            _c("station_name", "string", "Station name", "Nom de la station"),
            _c("network", "string", "Operating network", "Réseau gestionnaire"),
            _c("lat", "number", "Station latitude (WGS84)", "Latitude de la station (WGS84)", "degree"),
            _c("lon", "number", "Station longitude (WGS84)", "Longitude de la station (WGS84)", "degree"),
            _QUANTITY, _UNIT, _FROM, _TO,
            _c("value", "number", "Hourly value as published by the network", "Valeur horaire publiée par le réseau",
               "see unit column"),
            _c("licence", "string", "Licence of the source data", "Licence des données sources"),
        ),
        api_path="/v1/stations",
        private_data=False,
        geometry="point:lat:lon",
        licence="reference",
    ),
)

DATASET_IDS = tuple(d.id for d in DEFAULT_DATASETS)


def select_datasets(ids: Sequence[str], available: Sequence[Dataset] = DEFAULT_DATASETS) -> tuple[Dataset, ...]:
    """The configured datasets (all when `ids` is empty), in declaration order."""
    by_id = {d.id: d for d in available}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise InvalidParameter("dataset", f"unknown dataset {unknown[0]!r}; one of {sorted(by_id)}")
    wanted = set(ids)
    return tuple(d for d in available if not wanted or d.id in wanted)
