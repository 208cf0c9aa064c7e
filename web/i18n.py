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
    "quantity.pm1": ("PM1", "PM1"),
    "quantity.pm25": ("PM2.5", "PM2,5"),
    "quantity.pm10": ("PM10", "PM10"),
    "quantity.no2": ("NO₂", "NO₂"),
    "quantity.o3": ("O₃", "O₃"),
    "quantity.temperature": ("Temperature", "Température"),
    "quantity.humidity": ("Relative humidity", "Humidité relative"),
    "quantity.pressure": ("Pressure", "Pression"),
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
    # --- volunteer sign-up and flashing (issue 17v: web/volunteer.py) -------------------------------
    "nav.volunteer": ("Host a sensor", "Accueillir un capteur"),
    "vol.signup.title": ("Register a sensor", "Inscrire un capteur"),
    "vol.signup.intro": ("Host an air-quality sensor: tell us what it is and where it stands. Your e-mail, name and exact "
                         "position stay private; the map shows only an area of about 175 m.",
                         "Accueillez un capteur de qualité de l'air : dites-nous ce qu'il est et où il se trouve. Votre "
                         "e-mail, votre nom et la position exacte restent privés ; la carte ne montre qu'une zone "
                         "d'environ 175 m."),
    "vol.signup.mail": ("We send a confirmation link to your e-mail address: the sensor is created when you open it.",
                        "Nous envoyons un lien de confirmation à votre adresse : le capteur est créé quand vous l'ouvrez."),
    "vol.signup.nomail": ("E-mail confirmation is not configured on this server: the sensor is created at once.",
                          "La confirmation par e-mail n'est pas configurée sur ce serveur : le capteur est créé tout de suite."),
    "vol.signup.fix": ("Some fields need a correction (see below); nothing you typed was lost.",
                       "Certains champs sont à corriger (voir ci-dessous) ; rien de ce que vous avez saisi n'est perdu."),
    "vol.f.name": ("Private name of the sensor", "Nom privé du capteur"),
    "vol.f.name.hint": ("For you only, e.g. “balcony”.", "Pour vous seulement, par ex. « balcon »."),
    "vol.f.email": ("E-mail address", "Adresse e-mail"),
    "vol.f.email.hint": ("Never published.", "Jamais publiée."),
    "vol.f.owner": ("Your name (optional)", "Votre nom (facultatif)"),
    "vol.f.kind": ("Kind of sensor", "Type de capteur"),
    "vol.kind.fixed": ("Fixed (balcony, window, garden)", "Fixe (balcon, fenêtre, jardin)"),
    "vol.kind.mobile": ("Mobile (bike, with GPS)", "Mobile (vélo, avec GPS)"),
    "vol.f.sensors": ("Sensors", "Capteurs"),
    "vol.f.sensors.hint": ("Tick the ones your device carries.", "Cochez ceux que porte votre appareil."),
    "vol.f.pm": ("Particles", "Particules"),
    "vol.f.climate": ("Temperature and humidity", "Température et humidité"),
    "vol.f.other": ("Other", "Autres"),
    "vol.f.transport": ("Connection", "Connexion"),
    "vol.transport.mqtt": ("Wi-Fi, MQTT (ESPHome)", "Wi-Fi, MQTT (ESPHome)"),
    "vol.transport.http": ("Wi-Fi, HTTP (ESPHome or sensor.community firmware)",
                           "Wi-Fi, HTTP (ESPHome ou firmware sensor.community)"),
    "vol.transport.lorawan": ("LoRaWAN", "LoRaWAN"),
    "vol.f.position": ("Position", "Position"),
    "vol.f.position.hint": ("Where the sensor stands (decimal degrees, e.g. 48.5734 and 7.7521). Kept private.",
                            "Où se trouve le capteur (degrés décimaux, par ex. 48.5734 et 7.7521). Reste privée."),
    "vol.f.lat": ("Latitude", "Latitude"),
    "vol.f.lon": ("Longitude", "Longitude"),
    "vol.f.chip": ("sensor.community chip id (optional)", "Identifiant de puce sensor.community (facultatif)"),
    "vol.f.chip.hint": ("e.g. esp8266-1234567, shown on the airrohr configuration page.",
                        "par ex. esp8266-1234567, affiché par la page de configuration airrohr."),
    "vol.f.deveui": ("LoRaWAN DevEUI (optional)", "DevEUI LoRaWAN (facultatif)"),
    "vol.f.deveui.hint": ("16 hexadecimal characters printed on the device; one is generated if empty.",
                          "16 caractères hexadécimaux imprimés sur l'appareil ; généré s'il est vide."),
    "vol.f.consent": ("Publish this sensor's data as open data (aggregated by area)",
                      "Publier les données de ce capteur en open data (agrégées par zone)"),
    "vol.f.submit": ("Register", "Inscrire"),
    "vol.err.required": ("Required: please fill in this field.", "Obligatoire : merci de remplir ce champ."),
    "vol.mail.title": ("Check your mailbox", "Consultez votre messagerie"),
    "vol.mail.text": ("If this address can receive mail, a confirmation link is on its way to it. Open it to create "
                      "the sensor and see its credentials (once).",
                      "Si cette adresse peut recevoir du courrier, un lien de confirmation est en route. Ouvrez-le pour "
                      "créer le capteur et voir ses identifiants (une seule fois)."),
    "vol.mail.hint": ("No mail after a few minutes? Look in the spam folder, or sign up again later.",
                      "Pas de message après quelques minutes ? Regardez dans les indésirables, ou réessayez plus tard."),
    "vol.link.title": ("Confirmation link", "Lien de confirmation"),
    "vol.confirm.title": ("Confirm your sensor", "Confirmez votre capteur"),
    "vol.confirm.text": ("Create this sensor? Its credentials are shown on the next page, once: keep them.",
                         "Créer ce capteur ? Ses identifiants s'affichent à la page suivante, une seule fois : "
                         "gardez-les."),
    "vol.confirm.button": ("Create the sensor", "Créer le capteur"),
    "vol.creds.title": ("Your sensor's credentials", "Les identifiants de votre capteur"),
    "vol.creds.once": ("Shown only this once: copy them or download the bundle now. Only their fingerprints are kept.",
                       "Affichés cette seule fois : copiez-les ou téléchargez le dossier maintenant. Seules leurs "
                       "empreintes sont gardées."),
    "vol.creds.public": ("Its public name is {pseudonym}; its page:", "Son nom public est {pseudonym} ; sa page :"),
    "vol.creds.uid": ("Device id", "Identifiant de l'appareil"),
    "vol.creds.token": ("Device token", "Jeton de l'appareil"),
    "vol.creds.mqtt_user": ("MQTT user", "Utilisateur MQTT"),
    "vol.creds.mqtt_password": ("MQTT password", "Mot de passe MQTT"),
    "vol.creds.mqtt_topic": ("MQTT topic", "Sujet MQTT"),
    "vol.creds.bundle": ("Flash bundle", "Dossier à flasher"),
    "vol.creds.bundle.text": ("The ESPHome configuration (or the LoRaWAN keys), the sensor.community settings and a "
                              "label to print, with these credentials filled in.",
                              "La configuration ESPHome (ou les clés LoRaWAN), les réglages sensor.community et une "
                              "étiquette à imprimer, avec ces identifiants remplis."),
    "vol.creds.download": ("Download the bundle (zip)", "Télécharger le dossier (zip)"),
    "vol.shown.title": ("Credentials already shown", "Identifiants déjà affichés"),
    "vol.shown.title.text": ("The credentials are shown only once, and they were. Lost them? Sign in to “my sensor” "
                             "with the device token and ask for new ones, or register again.",
                             "Les identifiants ne s'affichent qu'une fois, et c'est fait. Perdus ? Connectez-vous à "
                             "« mon capteur » avec le jeton de l'appareil pour en demander de nouveaux, ou inscrivez-le "
                             "à nouveau."),
    "vol.bundle.title": ("Flash bundle", "Dossier à flasher"),
    "vol.bundle.unknown": ("This device token is unknown (or was replaced).",
                           "Ce jeton d'appareil est inconnu (ou a été remplacé)."),
    "vol.flash.link": ("How to flash the sensor", "Comment flasher le capteur"),
    "vol.flash.title": ("Flash your sensor with ESPHome", "Flasher votre capteur avec ESPHome"),
    "vol.flash.intro": ("Your bundle holds esphome.yaml, an ESPHome configuration for an ESP32 board that reads your "
                        "sensors and sends their values to civicair every few minutes, with your sensor's own "
                        "credentials.",
                        "Votre dossier contient esphome.yaml, une configuration ESPHome pour carte ESP32 qui lit vos "
                        "capteurs et envoie leurs valeurs à civicair toutes les quelques minutes, avec les "
                        "identifiants de votre capteur."),
    "vol.flash.esphome": ("Step by step", "Pas à pas"),
    "vol.flash.s1": ("Unzip the bundle into a folder; keep it private (it holds the sensor's password).",
                     "Décompressez le dossier ; gardez-le privé (il contient le mot de passe du capteur)."),
    "vol.flash.s2": ("Open secrets.yaml and write your Wi-Fi's name and password in place of the placeholders.",
                     "Ouvrez secrets.yaml et écrivez le nom et le mot de passe de votre Wi-Fi à la place des valeurs "
                     "d'exemple."),
    "vol.flash.s3": ("Install ESPHome (Python 3.11 or later):", "Installez ESPHome (Python 3.11 ou plus récent) :"),
    "vol.flash.s4": ("Check the configuration (it must say “Configuration is valid!”):",
                     "Vérifiez la configuration (elle doit afficher « Configuration is valid! ») :"),
    "vol.flash.s5": ("Plug the ESP32 in by USB, then build and write the firmware (the first build takes a while):",
                     "Branchez l'ESP32 en USB, puis compilez et écrivez le firmware (la première compilation est "
                     "longue) :"),
    "vol.flash.s6": ("Place the sensor outside, sheltered from rain and sun. Its first values appear on “my sensor” "
                     "within minutes.",
                     "Installez le capteur dehors, à l'abri de la pluie et du soleil. Ses premières valeurs "
                     "apparaissent sur « mon capteur » en quelques minutes."),
    "vol.flash.wiring": ("Wiring", "Câblage"),
    "vol.flash.w.uart": ("SDS011 or PMS5003/7003: sensor TX to GPIO16, sensor RX to GPIO17, 5 V and GND.",
                         "SDS011 ou PMS5003/7003 : TX du capteur sur GPIO16, RX du capteur sur GPIO17, 5 V et GND."),
    "vol.flash.w.i2c": ("SPS30, SEN5x, BME280, BMP280, SHT3x: SDA to GPIO21, SCL to GPIO22 (DHT22: data to GPIO4).",
                        "SPS30, SEN5x, BME280, BMP280, SHT3x : SDA sur GPIO21, SCL sur GPIO22 (DHT22 : données sur "
                        "GPIO4)."),
    "vol.flash.w.gps": ("Bike sensor: the GPS module's TX to GPIO25, RX to GPIO26.",
                        "Capteur de vélo : TX du module GPS sur GPIO25, RX sur GPIO26."),
    "vol.flash.airrohr": ("A sensor.community (airrohr) sensor", "Un capteur sensor.community (airrohr)"),
    "vol.flash.airrohr.text": ("Keep its firmware: open its configuration page, section “Send data to own API”, and "
                               "type in the values of airrohr.txt.",
                               "Gardez son firmware : ouvrez sa page de configuration, section « Envoyer vers sa "
                               "propre API », et recopiez les valeurs de airrohr.txt."),
    "vol.flash.lorawan": ("A LoRaWAN sensor", "Un capteur LoRaWAN"),
    "vol.flash.lorawan.text": ("ESPHome has no LoRaWAN: keep your firmware, give it the OTAA keys of lorawan.txt and "
                               "encode its messages with civicair_binary_v1.h; the network server decodes them with "
                               "civicair_binary_v1.js.",
                               "ESPHome ne gère pas LoRaWAN : gardez votre firmware, donnez-lui les clés OTAA de "
                               "lorawan.txt et encodez ses messages avec civicair_binary_v1.h ; le serveur réseau les "
                               "décode avec civicair_binary_v1.js."),
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
    # --- issue 17o: partner area and operator console (web/partner.py, web/operator.py, web/signin.py) ---
    "signin.key": ("API key", "Clé d'API"),
    "signin.submit": ("Sign in", "Se connecter"),
    "signin.out": ("Sign out", "Se déconnecter"),
    "signin.as": ("Signed in as {name}", "Connecté : {name}"),
    "signin.unknown": ("Unknown or revoked API key.", "Clé d'API inconnue ou révoquée."),
    "signin.scope": ("This API key does not give access to this area.", "Cette clé d'API ne donne pas accès à cet espace."),
    "partner.nav": ("Partner area", "Espace partenaire"),
    "partner.signin.title": ("Partner sign-in", "Connexion partenaire"),
    "partner.signin.intro": ("Sign in with the API key civicair gave your organisation (scope calibration). The key is "
                             "checked once; your browser then keeps a signed session for {hours} hours.",
                             "Connectez-vous avec la clé d'API que civicair a remise à votre organisme (droit "
                             "calibration). La clé est vérifiée une fois ; votre navigateur garde ensuite une session "
                             "signée pendant {hours} heures."),
    "partner.devices": ("Devices", "Capteurs"),
    "partner.devices.title": ("Devices and their calibration reports", "Capteurs et leurs rapports de calibration"),
    "partner.devices.caption": ("Devices by pseudonym, with the state of each pollutant's calibration",
                                "Capteurs par pseudonyme, avec l'état de la calibration de chaque polluant"),
    "partner.found": ("{n} of {total} devices shown.", "{n} capteurs affichés sur {total}."),
    "partner.report.link": ("{quantity} report of {device}", "{quantity} : rapport de {device}"),
    "partner.none": ("No device matches these filters.", "Aucun capteur ne correspond à ces filtres."),
    "partner.f.status": ("Status", "Statut"),
    "partner.f.quantity": ("Pollutant", "Polluant"),
    "partner.f.state": ("Calibration", "Calibration"),
    "partner.f.station": ("Co-located with station", "Co-localisé avec la station"),
    "partner.f.sensor": ("Sensor type", "Type de capteur"),
    "partner.f.any": ("any", "tous"),
    "partner.f.apply": ("Filter", "Filtrer"),
    "partner.status.reliable": ("reliable", "fiable"),
    "partner.status.suspect": ("suspect", "douteux"),
    "partner.status.unreliable": ("unreliable", "non fiable"),
    "partner.status.insufficient_data": ("insufficient data", "données insuffisantes"),
    "partner.state.colocated": ("co-located", "co-localisé"),
    "partner.state.network": ("network model", "modèle de réseau"),
    "partner.state.epa": ("US-EPA correction", "correction US-EPA"),
    "partner.state.none": ("not calibrated", "non calibré"),
    "partner.state.insufficient_data": ("insufficient data", "données insuffisantes"),
    "partner.state.unreliable": ("unreliable", "non fiable"),
    "partner.col.device": ("Device", "Capteur"),
    "partner.col.sensor": ("Sensor", "Modèle"),
    "partner.col.status": ("Status", "Statut"),
    "partner.col.stars": ("Stars", "Étoiles"),
    "partner.col.reports": ("Reports by pollutant", "Rapports par polluant"),
    "partner.col.distance": ("Distance (m)", "Distance (m)"),
    "partner.col.method": ("Method", "Méthode"),
    "partner.col.uncertainty": ("Uncertainty (%)", "Incertitude (%)"),
    "partner.col.class": ("Class", "Classe"),
    "partner.stations": ("Reference stations", "Stations de référence"),
    "partner.station.title": ("Station {code}", "Station {code}"),
    "partner.station.open": ("Report of station {code}", "Rapport de la station {code}"),
    "partner.station.network": ("Network", "Réseau"),
    "partner.station.readings": ("{quantity} readings", "Mesures {quantity}"),
    "partner.station.devices": ("Devices within {m} m ({n})", "Capteurs à moins de {m} m ({n})"),
    "partner.station.empty": ("No device is co-located with this station.", "Aucun capteur n'est co-localisé avec cette station."),
    "operator.nav": ("Operator console", "Console d'exploitation"),
    "operator.signin.title": ("Operator sign-in", "Connexion exploitant"),
    "operator.signin.intro": ("Sign in with a partner API key that has the operator scope. Your browser then keeps a "
                              "signed session for {hours} hours.",
                              "Connectez-vous avec une clé d'API partenaire ayant le droit operator. Votre navigateur "
                              "garde ensuite une session signée pendant {hours} heures."),
    "op.title": ("Operator console", "Console d'exploitation"),
    "op.home": ("Summary", "Résumé"),
    "op.dl": ("Dead letters", "Messages en échec"),
    "op.q": ("Quarantine", "Quarantaine"),
    "op.dev": ("Publication", "Publication"),
    "op.health": ("Health", "État de santé"),
    "op.more": ("Next page", "Page suivante"),
    "op.back": ("Back to {what}", "Retour : {what}"),
    "op.sum.dl": ("{n} dead letters waiting", "{n} messages en échec en attente"),
    "op.sum.q": ("{n} quarantined messages of unknown devices, {attached} attached and waiting for a replay",
                 "{n} messages de capteurs inconnus en quarantaine, {attached} rattachés en attente de rejeu"),
    "op.sum.dev": ("{n} devices awaiting publication", "{n} capteurs en attente de publication"),
    "op.f.source": ("Source", "Source"),
    "op.f.device": ("Device", "Capteur"),
    "op.f.error": ("Error", "Erreur"),
    "op.f.all": ("include replayed ones", "inclure les messages rejoués"),
    "op.col.received": ("Received (UTC)", "Reçu (UTC)"),
    "op.col.size": ("Size", "Taille"),
    "op.col.state": ("State", "État"),
    "op.col.topic": ("Topic or endpoint", "Topic ou point d'entrée"),
    "op.col.ref": ("Device reference", "Référence du capteur"),
    "op.state.waiting": ("waiting", "en attente"),
    "op.state.replayed": ("replayed", "rejoué"),
    "op.state.replayed_at": ("replayed at {at}", "rejoué le {at}"),
    "op.state.failed": ("replay failed", "rejeu en échec"),
    "op.payload": ("Payload", "Contenu"),
    "op.payload.hex": ("Payload, hexadecimal dump", "Contenu, vidage hexadécimal"),
    "op.dl.intro": ("Messages that could not be decoded or stored, newest first. A replay decodes the kept bytes "
                    "again with today's code and stores them at their original arrival time.",
                    "Messages qui n'ont pu être décodés ou enregistrés, les plus récents d'abord. Un rejeu décode à "
                    "nouveau les octets conservés avec le code actuel et les enregistre à leur heure d'arrivée."),
    "op.dl.none": ("No dead letter.", "Aucun message en échec."),
    "op.dl.one": ("Dead letter #{id}", "Message en échec n° {id}"),
    "op.dl.replay": ("Replay", "Rejouer"),
    "op.dl.replay.help": ("Replaying twice changes nothing; a message that fails again stays here with the new error.",
                          "Rejouer deux fois ne change rien ; un message qui échoue encore reste ici avec la nouvelle erreur."),
    "op.dl.replayed": ("Replayed: {n} message(s), {readings} reading(s) written ({outcomes}).",
                       "Rejoué : {n} message(s), {readings} mesure(s) enregistrée(s) ({outcomes})."),
    "op.dl.not_replayed": ("Not replayed: {error}", "Non rejoué : {error}"),
    "op.dl.overflow": ("Not kept (quota full)", "Non conservés (quota plein)"),
    "op.dl.overflow.row": ("{table}: {n} message(s), {size} B from {device}, last at {at}",
                           "{table} : {n} message(s), {size} o de {device}, le dernier le {at}"),
    "op.q.intro": ("Messages naming a device reference (DevEUI, TTS id, chip id) that no registered device has. "
                   "Attach one to a device, then replay the attached messages.",
                   "Messages portant une référence (DevEUI, identifiant TTS, identifiant de puce) qu'aucun capteur "
                   "enregistré n'a. Rattachez-en un à un capteur, puis rejouez les messages rattachés."),
    "op.q.none": ("The quarantine is empty.", "La quarantaine est vide."),
    "op.q.one": ("Quarantined message #{id}", "Message en quarantaine n° {id}"),
    "op.q.attached": ("attached to {uid}", "rattaché à {uid}"),
    "op.q.attach.title": ("Attach to a device", "Rattacher à un capteur"),
    "op.q.attach.uid": ("Device id (ca-…)", "Identifiant du capteur (ca-…)"),
    "op.q.attach.remember": ("also record this reference on the device (its next messages are then recognised)",
                             "enregistrer aussi cette référence sur le capteur (ses prochains messages seront reconnus)"),
    "op.q.attach": ("Attach", "Rattacher"),
    "op.q.bad_uid": ("A device id has 1 to 64 letters, digits, '_', '.', ':' or '-'.",
                     "Un identifiant de capteur a de 1 à 64 lettres, chiffres, « _ », « . », « : » ou « - »."),
    "op.q.replay": ("Replay the attached messages", "Rejouer les messages rattachés"),
    "op.q.replay.help": ("Stores every attached, not yet replayed message for its device (a second replay changes nothing).",
                         "Enregistre chaque message rattaché et pas encore rejoué pour son capteur (un second rejeu ne change rien)."),
    "op.q.replayed": ("Replayed {n} message(s): {readings} reading(s) written, {dead} dead letter(s).",
                      "{n} message(s) rejoué(s) : {readings} mesure(s) enregistrée(s), {dead} message(s) en échec."),
    "op.dev.intro": ("A new device's data are public only after its QA window (if it is not unreliable) or once an "
                     "operator approved it; a withheld device is never public. The public map, API and files follow "
                     "this state at once.",
                     "Les données d'un nouveau capteur ne sont publiques qu'après sa période de contrôle (s'il n'est "
                     "pas non fiable) ou après approbation ; un capteur retenu n'est jamais public. La carte, l'API et "
                     "les fichiers publics suivent cet état immédiatement."),
    "op.dev.state": ("Show", "Afficher"),
    "op.dev.uid": ("Device", "Capteur"),
    "op.dev.kind": ("Kind", "Type"),
    "op.dev.first": ("First data", "Premières données"),
    "op.dev.last": ("Latest data", "Dernières données"),
    "op.dev.publication": ("Publication", "Publication"),
    "op.dev.actions": ("Actions", "Actions"),
    "op.dev.public": ("public", "public"),
    "op.dev.no_consent": ("no consent to publish", "pas de consentement à publier"),
    "op.dev.qa_ends": ("QA window ends {at}", "fin de la période de contrôle : {at}"),
    "op.dev.note": ("Note for {uid}", "Note pour {uid}"),
    "op.dev.note.ph": ("note (optional)", "note (facultative)"),
    "op.dev.approve": ("Approve", "Approuver"),
    "op.dev.withhold": ("Withhold", "Retenir"),
    "op.dev.pending": ("Back to the automatic rule", "Revenir à la règle automatique"),
    "op.dev.changed": ("Publication of {uid} changed.", "Publication de {uid} modifiée."),
    "op.dev.none": ("No device in this state.", "Aucun capteur dans cet état."),
    "op.pub.awaiting": ("awaiting publication", "en attente de publication"),
    "op.pub.established": ("published (established)", "publiés (établis)"),
    "op.pub.pending": ("automatic rule", "règle automatique"),
    "op.pub.approved": ("approved", "approuvé"),
    "op.pub.withheld": ("withheld", "retenu"),
    "op.h.more": ("Gateways, spool and jobs in detail", "Passerelles, file disque et tâches en détail"),
    "op.h.checked": ("Checked at {at}.", "Vérifié le {at}."),
    "op.h.broker": ("MQTT broker: {status}", "Broker MQTT : {status}"),
    "op.h.gateways": ("Gateways alive: {alive} of {n}", "Passerelles actives : {alive} sur {n}"),
    "op.h.spool": ("Spool: {n} batch(es) waiting ({size} B), {corrupt} damaged",
                   "File disque : {n} lot(s) en attente ({size} o), {corrupt} endommagé(s)"),
    "op.h.jobs": ("Jobs: {n}, {failed} failing", "Tâches : {n}, {failed} en échec"),
    "op.h.jobs.elsewhere": ("The scheduler runs in another process: see what its jobs left below.",
                            "Le planificateur tourne dans un autre processus : voir ci-dessous ce que ses tâches ont laissé."),
    "op.h.gw.title": ("Gateways (MQTT client-id leases)", "Passerelles (baux d'identifiant client MQTT)"),
    "op.h.gw.client": ("Client id", "Identifiant client"),
    "op.h.gw.host": ("Host", "Hôte"),
    "op.h.gw.started": ("Started", "Démarrée"),
    "op.h.gw.beat": ("Last heartbeat", "Dernier signe de vie"),
    "op.h.gw.state": ("State", "État"),
    "op.h.gw.ago": ("{s} s ago", "il y a {s} s"),
    "op.h.gw.alive": ("alive", "active"),
    "op.h.gw.stale": ("stale", "périmée"),
    "op.h.gw.none": ("No gateway holds a lease: is the gateway running?", "Aucune passerelle ne tient de bail : la passerelle tourne-t-elle ?"),
    "op.h.spool.title": ("Spool (batches the database refused)", "File disque (lots refusés par la base)"),
    "op.h.spool.dir": ("Directory", "Répertoire"),
    "op.h.spool.batches": ("Waiting", "En attente"),
    "op.h.spool.corrupt": ("Damaged, set aside", "Endommagés, mis de côté"),
    "op.h.spool.oldest": ("Oldest waiting", "Plus ancien en attente"),
    "op.h.jobs.title": ("Scheduled jobs", "Tâches planifiées"),
    "op.h.jobs.name": ("Job", "Tâche"),
    "op.h.jobs.every": ("Every", "Tous les"),
    "op.h.jobs.last": ("Last run", "Dernière exécution"),
    "op.h.jobs.error": ("Last error", "Dernière erreur"),
    "op.h.last_seen": ("Latest data from a device", "Dernières données d'un capteur"),
    "op.h.calibration": ("Last calibration fit", "Dernier ajustement de calibration"),
    "op.h.snapshot": ("Newest map snapshot", "Instantané de carte le plus récent"),
    "op.h.backlog": ("Waiting invalidations", "Invalidations en attente"),
    "op.h.backlog.value": ("zones {zones}, bike cells {bikes}, exports {exports}",
                           "zones {zones}, cellules vélo {bikes}, exports {exports}"),
    # --- end of issue 17o ---
}


def message(lang: str, key: str, **fields: object) -> str:
    en, fr = MESSAGES[key]
    text = fr if lang == "fr" else en
    return text.format(**fields) if fields else text
