"""The flash bundle (pure: returns file names → bytes; the caller writes a folder or a zip).

Files: esphome.yaml + secrets.yaml + FLASH.txt (an ESP32 running ESPHome, MQTT or HTTP devices:
firmware_tools/esphome.py), or lorawan.txt + the civicair-binary codec (LoRaWAN devices: the
network server decodes), airrohr.txt (sensor.community "send to own API" page), label.svg /
label.png (QR code of the public page + pseudonym), README.txt (FR + EN). A secret that is not known at bundle time
(stored only as a hash) is written as a visible placeholder, never invented.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import segno
from civicair.firmware_tools.esphome import EsphomeInput, esphome_yaml, secrets_yaml
from civicair.firmware_tools.schemas import Credentials

PLACEHOLDER = "<PASTE-THE-SECRET-YOU-RECEIVED-AT-REGISTRATION>"
PUSH_PATH = "/v1/push/sensor-community"
CODECS = Path(__file__).parent / "codecs"


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


def mqtt_broker(b: BundleInput) -> tuple[str, int, bool]:
    parts = urlsplit(b.mqtt_url or "mqtt://127.0.0.1:1883")
    tls = parts.scheme == "mqtts"
    return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls


def esphome_input(b: BundleInput) -> EsphomeInput:
    c = b.credentials
    host, port, tls = mqtt_broker(b)
    return EsphomeInput(
        uid=b.uid, pseudonym=b.pseudonym, kind=b.kind, transport=b.transport, sensors=b.sensors,
        interval_s=b.interval_s, mqtt_host=host, mqtt_port=port, mqtt_tls=tls,
        mqtt_username=c.mqtt_username or b.uid, mqtt_password=_secret(c.mqtt_password),
        mqtt_topic=c.mqtt_topic or f"civicair/v1/devices/{b.uid}/up",
        push_url=b.api_base_url.rstrip("/") + "/v1/push", device_token=_secret(c.device_token))


def lorawan_text(b: BundleInput) -> str:
    """The OTAA keys and the codec the network server decodes with (ESPHome has no LoRaWAN)."""
    lw = b.credentials.lorawan
    if lw is None:
        return "LoRaWAN keys: not known here (ask the operator).\n"
    return (f"activation: OTAA\nlorawan_version: {lw.lorawan_version}\nregion: EU868\n"
            f"dev_eui: {lw.dev_eui}\njoin_eui: {lw.join_eui}\napp_key: {_secret(lw.app_key)}\n"
            "f_port: 1\npayload: civicair-binary-v1 (encoder: civicair_binary_v1.h; "
            "network-server decoder: civicair_binary_v1.js)\n")


def flash_commands(port: str = "/dev/ttyUSB0") -> list[str]:
    return [
        "python3 -m venv esphome-venv && esphome-venv/bin/pip install esphome",
        "esphome-venv/bin/esphome config esphome.yaml",
        f"esphome-venv/bin/esphome run esphome.yaml --device {port}",
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


def readme_text(b: BundleInput, files: dict[str, bytes]) -> str:
    secrets_missing = any(PLACEHOLDER.encode() in data for name, data in files.items() if name != "README.txt")
    missing_fr = ("\nATTENTION : certains secrets sont remplacés par " + PLACEHOLDER + ".\n"
                  "Recopiez ceux reçus à l'inscription, ou demandez de nouveaux identifiants.\n"
                  if secrets_missing else "")
    missing_en = ("\nNOTE: some secrets are replaced by " + PLACEHOLDER + ".\n"
                  "Copy the ones you received when registering, or ask for new credentials.\n"
                  if secrets_missing else "")
    if b.transport == "lorawan":
        how_fr = (" - lorawan.txt : les clés OTAA de votre capteur LoRaWAN ; le réseau décode ses messages avec\n"
                  "   civicair_binary_v1.js, et civicair_binary_v1.h les encode dans votre firmware.\n")
        how_en = (" - lorawan.txt: the OTAA keys of your LoRaWAN sensor; the network server decodes its messages\n"
                  "   with civicair_binary_v1.js, and civicair_binary_v1.h encodes them in your firmware.\n")
        steps_fr = steps_en = ""
    else:
        how_fr = (" - esphome.yaml et secrets.yaml : la configuration ESPHome d'une carte ESP32 (connexion :\n"
                  f"   {b.transport}). Mettez le nom et le mot de passe de votre Wi-Fi dans secrets.yaml.\n"
                  " - FLASH.txt : les commandes exactes pour écrire le firmware.\n")
        how_en = (" - esphome.yaml and secrets.yaml: the ESPHome configuration of an ESP32 board (connection:\n"
                  f"   {b.transport}). Put your Wi-Fi's name and password into secrets.yaml.\n"
                  " - FLASH.txt: the exact commands that write the firmware.\n")
        cmds = "\n".join("   " + c for c in flash_commands())
        steps_fr = f"\nPour écrire le firmware sur l'ESP32 (câble USB branché) :\n{cmds}\n"
        steps_en = f"\nTo write the firmware to the ESP32 (USB cable plugged in):\n{cmds}\n"
    return f"""civicair — {b.pseudonym}
=======================================

FRANÇAIS
--------
Merci d'accueillir un capteur de qualité de l'air ! Votre capteur s'appelle publiquement
« {b.pseudonym} ». Votre nom, votre adresse e-mail et la position exacte ne sont jamais publiés :
la carte montre seulement une zone d'environ 175 m.
Page publique de votre capteur : {b.public_url}

Ce dossier contient :
{how_fr} - airrohr.txt : si vous avez un capteur sensor.community (airrohr), recopiez ces valeurs dans
   la page « Envoyer vers sa propre API » de la configuration du capteur.
 - label.svg / label.png : une étiquette à imprimer et coller sur le boîtier.
{missing_fr}{steps_fr}
Ensuite, vérifiez que les mesures arrivent : `civicair device check {b.uid}`.
Gardez ce dossier privé : il contient les mots de passe de votre capteur.

ENGLISH
-------
Thank you for hosting an air-quality sensor! Your sensor's public name is "{b.pseudonym}".
Your name, e-mail address and exact position are never published: the map only shows an area
of about 175 m.
Public page of your sensor: {b.public_url}

This folder contains:
{how_en} - airrohr.txt: for a sensor.community (airrohr) sensor, type these values into the
   "Send data to own API" section of the sensor's configuration page.
 - label.svg / label.png: a label to print and stick on the enclosure.
{missing_en}{steps_en}
Then check that measurements arrive: `civicair device check {b.uid}`.
Keep this folder private: it holds your sensor's passwords.
"""


def build_bundle(b: BundleInput) -> dict[str, bytes]:
    airrohr = "\n".join(f"{k}: {v}" for k, v in airrohr_settings(b).items())
    files: dict[str, bytes] = {
        "airrohr.txt": (airrohr + "\n").encode(),
        "label.svg": label_svg(b).encode(),
        "label.png": label_png(b),
    }
    if b.transport == "lorawan":
        files["lorawan.txt"] = lorawan_text(b).encode()
        for name in ("civicair_binary_v1.js", "civicair_binary_v1.h"):
            files[name] = (CODECS / name).read_bytes()
    else:
        files["esphome.yaml"] = esphome_yaml(esphome_input(b)).encode()
        files["secrets.yaml"] = secrets_yaml(mqtt_tls=b.transport == "mqtt" and mqtt_broker(b)[2]).encode()
        files["FLASH.txt"] = ("# Build and write the ESPHome firmware of this sensor (ESP32, USB cable plugged in)\n"
                              + "\n".join(flash_commands()) + "\n").encode()
    files["README.txt"] = readme_text(b, files).encode()
    return files


def bundle_zip(files: dict[str, bytes], folder: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(f"{folder}/{name}", data)
    return buf.getvalue()
