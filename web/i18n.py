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
