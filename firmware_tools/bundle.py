"""The flash bundle (pure: returns file names → bytes; the caller writes a folder or a zip).

Files: config.json (civicair firmware), airrohr.txt (sensor.community "send to own API" page),
nvs.csv + FLASH.txt (ESP32 NVS partition and the exact commands), label.svg / label.png (QR code
of the public page + pseudonym), README.txt (FR + EN). A secret that is not known at bundle time
(stored only as a hash) is written as a visible placeholder, never invented.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import segno
from civicair.firmware_tools.schemas import Credentials

PLACEHOLDER = "<PASTE-THE-SECRET-YOU-RECEIVED-AT-REGISTRATION>"
NVS_NAMESPACE = "civicair"
NVS_OFFSET = "0x9000"  # default ESP32 partition table: nvs at 0x9000, 0x6000 bytes
NVS_SIZE = "0x6000"
PUSH_PATH = "/v1/push/sensor-community"


@dataclass(frozen=True)
class BundleInput:
    uid: str
    pseudonym: str
    kind: str
    transport: str
    sensors: tuple[str, ...]
    public_url: str
    api_base_url: str  # where HTTP pushes go
    mqtt_url: str | None  # broker as devices reach it
    interval_s: int
    credentials: Credentials


def _secret(value: str | None) -> str:
    return value if value else PLACEHOLDER


def build_config(b: BundleInput) -> dict:
    c = b.credentials
    config: dict = {
        "format": "civicair-firmware-config",
        "version": 1,
        "device": {"uid": b.uid, "pseudonym": b.pseudonym, "kind": b.kind, "sensors": list(b.sensors)},
        "transport": b.transport,
        "interval_s": b.interval_s,
        "wifi": {"ssid": "", "password": ""},
        "http": {"url": b.api_base_url.rstrip("/") + "/v1/push", "token": _secret(c.device_token)},
    }
    if b.transport == "mqtt":
        parts = urlsplit(b.mqtt_url or "mqtt://127.0.0.1:1883")
        config["mqtt"] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            "tls": parts.scheme == "mqtts",
            "username": c.mqtt_username or b.uid,
            "password": _secret(c.mqtt_password),
            "topic": c.mqtt_topic,
            "qos": 1,
        }
    if b.transport == "lorawan" and c.lorawan is not None:
        config["lorawan"] = {
            "activation": "OTAA", "lorawan_version": c.lorawan.lorawan_version, "region": "EU868",
            "dev_eui": c.lorawan.dev_eui, "join_eui": c.lorawan.join_eui,
            "app_key": _secret(c.lorawan.app_key), "f_port": 1, "payload": "civicair-binary-v1",
        }
    return config


def build_nvs_csv(config: dict) -> str:
    """ESP-IDF NVS partition CSV (key,type,encoding,value); keys ≤ 15 characters."""
    rows = [("key", "type", "encoding", "value"), (NVS_NAMESPACE, "namespace", "", "")]

    def add(key: str, encoding: str, value: object) -> None:
        assert len(key) <= 15, key
        rows.append((key, "data", encoding, str(value)))

    add("uid", "string", config["device"]["uid"])
    add("transport", "string", config["transport"])
    add("interval_s", "u32", config["interval_s"])
    add("wifi_ssid", "string", "")
    add("wifi_pass", "string", "")
    add("http_url", "string", config["http"]["url"])
    add("token", "string", config["http"]["token"])
    if "mqtt" in config:
        m = config["mqtt"]
        add("mqtt_host", "string", m["host"])
        add("mqtt_port", "u16", m["port"])
        add("mqtt_tls", "u8", int(m["tls"]))
        add("mqtt_user", "string", m["username"])
        add("mqtt_pass", "string", m["password"])
        add("mqtt_topic", "string", m["topic"])
    if "lorawan" in config:
        lw = config["lorawan"]
        add("dev_eui", "hex2bin", lw["dev_eui"])
        add("join_eui", "hex2bin", lw["join_eui"])
        if lw["app_key"] == PLACEHOLDER:
            add("app_key", "string", PLACEHOLDER)
        else:
            add("app_key", "hex2bin", lw["app_key"])
    out = io.StringIO()
    for row in rows:
        out.write(",".join(_csv_field(v) for v in row) + "\n")
    return out.getvalue()


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def flash_commands(port: str = "/dev/ttyUSB0") -> list[str]:
    return [
        "pip install esp-idf-nvs-partition-gen esptool",
        f"python -m esp_idf_nvs_partition_gen generate nvs.csv nvs.bin {NVS_SIZE}",
        f"esptool.py --chip esp32 --port {port} --baud 460800 write_flash {NVS_OFFSET} nvs.bin",
    ]


def airrohr_settings(b: BundleInput) -> dict[str, object]:
    parts = urlsplit(b.api_base_url)
    https = parts.scheme == "https"
    return {
        "Send to own API": "on",
        "Server": parts.hostname or "",
        "Path": (parts.path.rstrip("/") + PUSH_PATH),
        "Port": parts.port or (443 if https else 80),
        "User": b.uid,
        "Password": _secret(b.credentials.device_token),
        "HTTPS": "on" if https else "off",
    }


def qr_code(url: str) -> segno.QRCode:
    return segno.make_qr(url, error="m")


def label_svg(b: BundleInput) -> str:
    qr = qr_code(b.public_url)
    uri = qr.svg_data_uri(scale=4, border=2)
    size = qr.symbol_size(scale=4, border=2)[0]
    width, height = size + 24, size + 70
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<rect width="100%" height="100%" fill="white" stroke="black"/>'
        f'<image x="12" y="12" width="{size}" height="{size}" href="{escape(uri)}"/>'
        f'<text x="{width // 2}" y="{size + 34}" font-family="monospace" font-size="16" '
        f'text-anchor="middle">{escape(b.pseudonym)}</text>'
        f'<text x="{width // 2}" y="{size + 56}" font-family="sans-serif" font-size="10" '
        f'text-anchor="middle">civicair · air quality sensor / capteur</text></svg>'
    )


def label_png(b: BundleInput) -> bytes:
    """The QR code with the pseudonym printed under it."""
    from PIL import Image, ImageDraw

    buf = io.BytesIO()
    qr_code(b.public_url).save(buf, kind="png", scale=8, border=4)
    buf.seek(0)
    qr_img = Image.open(buf).convert("RGB")
    label = Image.new("RGB", (qr_img.width, qr_img.height + 40), "white")
    label.paste(qr_img, (0, 0))
    draw = ImageDraw.Draw(label)
    draw.text((qr_img.width // 2, qr_img.height + 18), b.pseudonym, fill="black", anchor="mm",
              font_size=22)
    out = io.BytesIO()
    label.save(out, format="PNG")
    return out.getvalue()


def readme_text(b: BundleInput, config: dict) -> str:
    secrets_missing = PLACEHOLDER in json.dumps(config)
    missing_fr = ("\nATTENTION : certains secrets sont remplacés par " + PLACEHOLDER + ".\n"
                  "Recopiez ceux reçus à l'inscription, ou demandez de nouveaux identifiants.\n"
                  if secrets_missing else "")
    missing_en = ("\nNOTE: some secrets are replaced by " + PLACEHOLDER + ".\n"
                  "Copy the ones you received when registering, or ask for new credentials.\n"
                  if secrets_missing else "")
    cmds = "\n".join("   " + c for c in flash_commands())
    return f"""civicair — {b.pseudonym}
=======================================

FRANÇAIS
--------
Merci d'accueillir un capteur de qualité de l'air ! Votre capteur s'appelle publiquement
« {b.pseudonym} ». Votre nom, votre adresse e-mail et la position exacte ne sont jamais publiés :
la carte montre seulement une zone d'environ 175 m.
Page publique de votre capteur : {b.public_url}

Ce dossier contient :
 - config.json : la configuration du firmware civicair (connexion : {b.transport}).
 - airrohr.txt : si vous avez un capteur sensor.community (airrohr), recopiez ces valeurs dans
   la page « Envoyer vers sa propre API » de la configuration du capteur.
 - nvs.csv et FLASH.txt : pour les cartes ESP32, les commandes exactes pour écrire la configuration.
 - label.svg / label.png : une étiquette à imprimer et coller sur le boîtier.
{missing_fr}
Pour écrire la configuration sur un ESP32 (câble USB branché) :
{cmds}
Ensuite, vérifiez que les mesures arrivent : `civicair device check {b.uid}`.
Gardez ce dossier privé : il contient les mots de passe de votre capteur.

ENGLISH
-------
Thank you for hosting an air-quality sensor! Your sensor's public name is "{b.pseudonym}".
Your name, e-mail address and exact position are never published: the map only shows an area
of about 175 m.
Public page of your sensor: {b.public_url}

This folder contains:
 - config.json: the civicair firmware configuration (connection: {b.transport}).
 - airrohr.txt: for a sensor.community (airrohr) sensor, type these values into the
   "Send data to own API" section of the sensor's configuration page.
 - nvs.csv and FLASH.txt: for ESP32 boards, the exact commands that write the configuration.
 - label.svg / label.png: a label to print and stick on the enclosure.
{missing_en}
To write the configuration to an ESP32 (USB cable plugged in):
{cmds}
Then check that measurements arrive: `civicair device check {b.uid}`.
Keep this folder private: it holds your sensor's passwords.
"""


def build_bundle(b: BundleInput) -> dict[str, bytes]:
    config = build_config(b)
    airrohr = "\n".join(f"{k}: {v}" for k, v in airrohr_settings(b).items())
    flash = ("# Write the civicair configuration into the ESP32 NVS partition\n"
             f"# (partition 'nvs' at {NVS_OFFSET}, size {NVS_SIZE}: the ESP-IDF default table)\n"
             + "\n".join(flash_commands()) + "\n")
    return {
        "config.json": (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode(),
        "airrohr.txt": (airrohr + "\n").encode(),
        "nvs.csv": build_nvs_csv(config).encode(),
        "FLASH.txt": flash.encode(),
        "label.svg": label_svg(b).encode(),
        "label.png": label_png(b),
        "README.txt": readme_text(b, config).encode(),
    }


def bundle_zip(files: dict[str, bytes], folder: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(f"{folder}/{name}", data)
    return buf.getvalue()
