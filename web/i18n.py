"""French and English for the pages: the language a request gets (switch `?lang=` kept in a
cookie, else the cookie, else the browser's Accept-Language) and the messages. Pure."""

from __future__ import annotations

from collections.abc import Mapping

LANGS = ("en", "fr")
COOKIE = "civicair_lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600


def from_accept_language(header: str | None) -> str | None:
    """The first of our languages in an Accept-Language header, by weight; None if none."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGS:
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, lang)
    return best[2] if best else None


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGS:
            return str(candidate)
    return from_accept_language(accept_language) or "en"


# key → (English, French). Placeholders are str.format fields.
MESSAGES: Mapping[str, tuple[str, str]] = {
    "skip": ("Skip to content", "Aller au contenu"),
    "nav": ("Main", "Principal"),
    "nav.map": ("Map", "Carte"),
    "nav.data": ("Open data", "Données ouvertes"),
    "nav.api": ("API", "API"),
    "lang.switch": ("Français", "English"),
    "lang.label": ("Language", "Langue"),
    "citizen": ("Citizen data: measured by volunteers' sensors, not produced by the city or the air-quality agency.",
                "Données citoyennes : mesurées par les capteurs de bénévoles, non produites par la ville ni par "
                "l'association de surveillance de la qualité de l'air."),
    "licence": ("Data licence: {name}", "Licence des données : {name}"),
    "map.title": ("Air quality map", "Carte de la qualité de l'air"),
    "map.heading": ("{quantity}: hourly means of citizen sensors", "{quantity} : moyennes horaires des capteurs citoyens"),
    "map.region": ("Map of zones, cells, bike cells and reference stations", "Carte des zones, cellules, cellules vélo et stations de référence"),
    "map.quantity": ("Pollutant", "Polluant"),
    "map.scale": ("Scale", "Échelle"),
    "map.show": ("Show", "Afficher"),
    "map.hour": ("Hour", "Heure"),
    "map.layers": ("Layers", "Couches"),
    "map.layer.zones": ("Zones and cells", "Zones et cellules"),
    "map.layer.bike": ("Bike cells", "Cellules vélo"),
    "map.layer.stations": ("Reference stations", "Stations de référence"),
    "map.tiles_down": ("Base map unavailable: zones and cells are still shown.",
                       "Fond de carte indisponible : les zones et cellules restent affichées."),
    "map.data_error": ("The map data could not be loaded.", "Les données de la carte n'ont pas pu être chargées."),
    "map.bike": ("Bike cell ", "Cellule vélo "),
    "map.station": ("Reference station ", "Station de référence "),
    "map.table": ("Latest published hour, by zone", "Dernière heure publiée, par zone"),
    "map.table.none": ("No zone yet.", "Pas encore de zone."),
    "map.privacy": ("Zones and cells are published only for hours with at least {k} distinct sensors; "
                    "sensors are shown by cell (about 175 m), never at their address; bike data only as cells.",
                    "Zones et cellules ne sont publiées que pour les heures d'au moins {k} capteurs distincts ; "
                    "les capteurs sont placés par cellule (environ 175 m), jamais à leur adresse ; les vélos "
                    "seulement par cellules."),
    "legend": ("Legend", "Légende"),
    "col.zone": ("Zone", "Zone"),
    "col.hour": ("Hour (UTC)", "Heure (UTC)"),
    "col.value": ("Value", "Valeur"),
    "col.index": ("Index band", "Classe d'indice"),
    "col.calibrated": ("Calibrated", "Calibrée"),
    "col.raw": ("Raw", "Brute"),
    "col.devices": ("Sensors", "Capteurs"),
    "col.coverage": ("Coverage", "Couverture"),
    "zone.kind.admin": ("Administrative zone", "Zone administrative"),
    "zone.kind.h3": ("H3 cell (resolution {res})", "Cellule H3 (résolution {res})"),
    "zone.devices": ("{n} published sensors", "{n} capteurs publiés"),
    "chart.hourly": ("Hourly, last 7 days", "Horaire, 7 derniers jours"),
    "chart.daily": ("Daily, last 30 days", "Journalier, 30 derniers jours"),
    "chart.calibrated": ("Calibrated", "Calibrée"),
    "chart.raw": ("Raw", "Brute"),
    "chart.value": ("Measured", "Mesurée"),
    "chart.reference": ("Reference station {code}", "Station de référence {code}"),
    "chart.caption": ("{quantity} in {unit}, {n} periods published; the table below holds the same values.",
                      "{quantity} en {unit}, {n} périodes publiées ; le tableau ci-dessous donne les mêmes valeurs."),
    "chart.data": ("Chart data", "Données du graphique"),
    "chart.region": ("Chart of {quantity}", "Graphique de {quantity}"),
    "interval": ("Period", "Période"),
    "coverage.zone": ("Over these {total} {unit}, {published} are published. {suppressed} hours were withheld "
                      "because fewer than {k} distinct sensors reported in them (k-anonymity); in the others, no "
                      "sensor of this zone reported.",
                      "Sur ces {total} {unit}, {published} sont publiées. {suppressed} heures ont été retenues parce "
                      "que moins de {k} capteurs distincts y ont mesuré (k-anonymat) ; dans les autres, aucun "
                      "capteur de la zone n'a mesuré."),
    "coverage.device": ("Over these {total} {unit}, {published} have data; on average {percent} % of the expected "
                        "readings arrived.",
                        "Sur ces {total} {unit}, {published} ont des données ; en moyenne {percent} % des mesures "
                        "attendues sont arrivées."),
    "coverage.station": ("Over these {total} {unit}, {published} have valid reference measurements.",
                         "Sur ces {total} {unit}, {published} ont des mesures de référence valides."),
    "unit.hour": ("hours", "heures"),
    "unit.day": ("days", "jours"),
    "downloads": ("Download", "Télécharger"),
    "dl.csv": ("CSV of this series", "CSV de cette série"),
    "dl.json": ("API query (JSON)", "Requête API (JSON)"),
    "dl.parquet": ("Parquet, the whole dataset ({dataset})", "Parquet, le jeu de données complet ({dataset})"),
    "dl.dataset": ("Dataset page", "Page du jeu de données"),
    "dl.catalogue": ("DCAT catalogue", "Catalogue DCAT"),
    "sensor.title": ("Sensor {name}", "Capteur {name}"),
    "sensor.kind.fixed": ("Fixed sensor", "Capteur fixe"),
    "sensor.kind.mobile": ("Bike sensor", "Capteur vélo"),
    "sensor.cell": ("Shown in cell", "Placé dans la cellule"),
    "sensor.model": ("Sensor", "Capteur"),
    "sensor.status": ("Status", "Statut"),
    "sensor.stars": ("Quality", "Qualité"),
    "sensor.stars.value": ("{n} of 5 stars", "{n} étoiles sur 5"),
    "sensor.stars.none": ("not rated yet", "pas encore évalué"),
    "sensor.first_seen": ("First data", "Premières données"),
    "sensor.last_seen": ("Latest data", "Dernières données"),
    "sensor.mobile": ("A bike sensor has no public series of its own: its data enter the bike cells of the map, "
                      "only where at least {k} sensors rode in the same hour, never as a track.",
                      "Un capteur vélo n'a pas de série publique propre : ses données entrent dans les cellules "
                      "vélo de la carte, seulement là où au moins {k} capteurs sont passés dans l'heure, jamais "
                      "comme un trajet."),
    "sensor.privacy": ("The volunteer's name and the sensor's address are never published.",
                       "Le nom du bénévole et l'adresse du capteur ne sont jamais publiés."),
    "status.reliable": ("reliable: calibrated and checked against the reference", "fiable : calibré et vérifié par rapport à la référence"),
    "status.insufficient_data": ("not enough data yet to judge it", "pas encore assez de données pour l'évaluer"),
    "status.unreliable": ("unreliable: its data are not published in zone values", "non fiable : ses données ne comptent pas dans les valeurs des zones"),
    "status.uncalibrated": ("not calibrated yet: raw values", "pas encore calibré : valeurs brutes"),
    "station.title": ("Reference station {name}", "Station de référence {name}"),
    "station.official": ("Official measurements of {network}, published under their own licence ({licence}); "
                         "attribution: {attribution}.",
                         "Mesures officielles de {network}, publiées sous leur propre licence ({licence}) ; "
                         "attribution : {attribution}."),
    "station.type": ("Type", "Type"),
    "station.pollutants": ("Pollutants", "Polluants"),
    "datasets.title": ("Open datasets", "Jeux de données ouverts"),
    "dataset.files": ("Files", "Fichiers"),
    "dataset.no_files": ("No file exported yet (the export runs daily).", "Pas encore de fichier exporté (l'export est quotidien)."),
    "dataset.latest": ("Latest file: {csv} · {parquet}", "Dernier fichier : {csv} · {parquet}"),
    "dataset.api": ("The same data through the API", "Les mêmes données par l'API"),
    "dataset.columns": ("Columns", "Colonnes"),
    "dataset.portal": ("On the open-data portal", "Sur le portail open data"),
    "col.name": ("Name", "Nom"),
    "col.type": ("Type", "Type"),
    "col.description": ("Description", "Description"),
    "col.file": ("File", "Fichier"),
    "col.period": ("Period", "Période"),
    "error.404": ("Not found", "Introuvable"),
    "error.404.text": ("There is no such page: {what}.", "Cette page n'existe pas : {what}."),
    "embed.title": ("Air quality — {zone}", "Qualité de l'air — {zone}"),
    "none": ("—", "—"),
}


def message(lang: str, key: str, **fields: object) -> str:
    en, fr = MESSAGES[key]
    text = fr if lang == "fr" else en
    return text.format(**fields) if fields else text
