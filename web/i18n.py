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
    # --- "my sensor" (issue 17s: web/mysensor.py, templates/mysensor/) ---------------------------
    "nav.my_sensor": ("My sensor", "Mon capteur"),
    "my.sign_in.title": ("Sign in to my sensor", "Connexion à mon capteur"),
    "my.sign_in.intro": ("Sign in with your sensor's device token (given once at registration, or after a rotation). "
                         "Your browser then keeps a signed session for {hours} hours.",
                         "Connectez-vous avec le jeton de votre capteur (donné une fois à l'inscription, ou après un "
                         "renouvellement). Votre navigateur garde ensuite une session signée pendant {hours} heures."),
    "my.sign_in.token": ("Device token", "Jeton du capteur"),
    "my.sign_in.submit": ("Sign in", "Se connecter"),
    "my.sign_in.unknown": ("Unknown device token (it may have been rotated).",
                           "Jeton inconnu (il a peut-être été renouvelé)."),
    "my.sign_in.lost": ("Lost the token? Only its hash is kept: ask the operator to rotate it.",
                        "Jeton perdu ? Seule son empreinte est conservée : demandez à l'opérateur de le renouveler."),
    "my.sign_out": ("Sign out", "Se déconnecter"),
    "my.back": ("Back", "Retour"),
    "my.refused": ("Refused", "Refusé"),
    "my.bad_input": ("Not accepted", "Non accepté"),
    "my.erased": ("Sensor erased", "Capteur effacé"),
    "my.erased.text": ("Your sensor, its readings and its personal fields are erased, also from the published files. "
                       "You are signed out.",
                       "Votre capteur, ses mesures et ses données personnelles sont effacés, y compris des fichiers "
                       "publiés. Vous êtes déconnecté."),
    "my.title": ("My sensor “{name}”", "Mon capteur « {name} »"),
    "my.public_as": ("Published as", "Publié sous le nom"),
    "my.last": ("Last data", "Dernières données"),
    "my.col.time": ("Measured", "Mesuré"),
    "my.col.quantity": ("Quantity", "Grandeur"),
    "my.col.value": ("Value", "Valeur"),
    "my.col.received": ("Received", "Reçu"),
    "my.flagged": ("flagged", "signalé"),
    "my.no_readings": ("No reading received in the last 7 days.", "Aucune mesure reçue ces 7 derniers jours."),
    "my.refresh": ("Refresh", "Actualiser"),
    "my.state": ("Status", "État"),
    "my.last_24h": ("Readings in the last 24 h", "Mesures des dernières 24 h"),
    "my.battery": ("Battery", "Batterie"),
    "my.battery.external": ("external power", "alimentation externe"),
    "my.publication": ("Publication", "Publication"),
    "my.pub.no_consent": ("Not published: you did not agree to publish its data.",
                          "Non publié : vous n'avez pas accepté la publication de ses données."),
    "my.pub.public": ("Public: its data appear on the map, in the API and in the open files.",
                      "Public : ses données apparaissent sur la carte, dans l'API et dans les fichiers ouverts."),
    "my.pub.withheld": ("Withheld by an operator: its data are not published.",
                        "Retenu par un opérateur : ses données ne sont pas publiées."),
    "my.pub.pending_until": ("Pending: public after its first quality check ({when}) if its data look reliable, "
                             "or when an operator approves it.",
                             "En attente : public après son premier contrôle qualité ({when}) si ses données "
                             "semblent fiables, ou dès qu'un opérateur l'approuve."),
    "my.pub.pending": ("Pending: public once its first quality-check window has passed (it starts with the first "
                       "reading) or when an operator approves it.",
                       "En attente : public après sa première période de contrôle qualité (elle commence à la "
                       "première mesure) ou dès qu'un opérateur l'approuve."),
    "my.flags": ("Quality flags", "Signalements qualité"),
    "my.col.flag": ("Flag", "Signalement"),
    "my.col.from": ("From", "Du"),
    "my.col.to": ("To", "Au"),
    "my.no_flags": ("No quality flag.", "Aucun signalement."),
    "my.calibration": ("Calibration", "Calibration"),
    "my.col.method": ("Method", "Méthode"),
    "my.col.fitted": ("Fitted", "Ajustée"),
    "my.col.uncertainty": ("Uncertainty", "Incertitude"),
    "my.col.report": ("Report", "Rapport"),
    "my.report": ("{quantity} report", "Rapport {quantity}"),
    "my.no_calibration": ("Not calibrated yet.", "Pas encore calibré."),
    "my.zones": ("Privacy zones", "Zones privées"),
    "my.zones.count": ("{n} privacy zone(s).", "{n} zone(s) privée(s)."),
    "my.zones.edit": ("Edit the privacy zones", "Modifier les zones privées"),
    "my.zones.fixed": ("Privacy zones are for bike sensors: a fixed sensor's position is never published.",
                       "Les zones privées concernent les capteurs vélo : la position d'un capteur fixe n'est "
                       "jamais publiée."),
    "my.zones.text": ("Circles (50 m to 5 km, at most {max}) around places such as your home: your bike's points "
                      "inside them are never published.",
                      "Des cercles (50 m à 5 km, {max} au plus) autour de lieux comme votre domicile : les points de "
                      "votre vélo à l'intérieur ne sont jamais publiés."),
    "my.zones.saved": ("Saved: {n} privacy zone(s).", "Enregistré : {n} zone(s) privée(s)."),
    "my.zones.map_help": ("Click the map to place a new zone, then save.",
                          "Cliquez sur la carte pour placer une nouvelle zone, puis enregistrez."),
    "my.zones.tiles_down": ("Base map unavailable: the zones are still drawn, and the fields below work.",
                            "Fond de carte indisponible : les zones restent dessinées et les champs ci-dessous "
                            "fonctionnent."),
    "my.zones.map": ("Map of the privacy zones", "Carte des zones privées"),
    "my.zones.table": ("Zones (latitude, longitude in degrees, radius in metres)",
                       "Zones (latitude, longitude en degrés, rayon en mètres)"),
    "my.zones.lat": ("Latitude", "Latitude"),
    "my.zones.lon": ("Longitude", "Longitude"),
    "my.zones.radius": ("Radius (m)", "Rayon (m)"),
    "my.zones.remove": ("Remove", "Supprimer"),
    "my.zones.new": ("New", "Nouvelle"),
    "my.zones.save": ("Save the zones", "Enregistrer les zones"),
    "my.rotate": ("New credentials", "Nouveaux identifiants"),
    "my.rotate.text": ("A new device token (and MQTT password): the old ones stop working at once, and every other "
                       "signed-in browser is signed out. Put the new ones in your sensor.",
                       "Un nouveau jeton (et mot de passe MQTT) : les anciens cessent de fonctionner aussitôt, et "
                       "les autres navigateurs connectés sont déconnectés. Mettez les nouveaux dans votre capteur."),
    "my.rotate.submit": ("Get new credentials", "Obtenir de nouveaux identifiants"),
    "my.creds.title": ("Your new credentials", "Vos nouveaux identifiants"),
    "my.creds.once": ("Copy them now: they are shown only once.", "Copiez-les maintenant : ils ne sont affichés qu'une fois."),
    "my.creds.token": ("Device token", "Jeton du capteur"),
    "my.creds.mqtt_user": ("MQTT user", "Utilisateur MQTT"),
    "my.creds.mqtt_password": ("MQTT password", "Mot de passe MQTT"),
    "my.creds.mqtt_topic": ("MQTT topic", "Sujet MQTT"),
    "my.creds.next": ("The broker accepts the new MQTT password within a few minutes.",
                      "Le broker accepte le nouveau mot de passe MQTT d'ici quelques minutes."),
    "my.erase": ("Erase my sensor", "Effacer mon capteur"),
    "my.erase.text": ("Deletes the sensor, all its readings and your personal data, also from the published files. "
                      "You will be asked to confirm.",
                      "Supprime le capteur, toutes ses mesures et vos données personnelles, y compris des fichiers "
                      "publiés. Une confirmation vous sera demandée."),
    "my.erase.submit": ("Erase…", "Effacer…"),
    "my.erase.confirm_title": ("Erase this sensor?", "Effacer ce capteur ?"),
    "my.erase.confirm_text": ("“{name}”, its readings and your personal data will be deleted. This cannot be undone. "
                              "This confirmation is valid {minutes} minutes.",
                              "« {name} », ses mesures et vos données personnelles seront supprimés. C'est "
                              "irréversible. Cette confirmation est valable {minutes} minutes."),
    "my.erase.confirm_submit": ("Yes, erase it for good", "Oui, l'effacer définitivement"),
    "my.erase.cancel": ("No, keep my sensor", "Non, garder mon capteur"),
    # --- end of "my sensor" ------------------------------------------------------------------------
}


def message(lang: str, key: str, **fields: object) -> str:
    en, fr = MESSAGES[key]
    text = fr if lang == "fr" else en
    return text.format(**fields) if fields else text
