"""`civicair device ...` commands: register a sensor, build its flash bundle."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from civicair.core.errors import CivicairError
from pydantic import ValidationError
from rich.console import Console

device_app = typer.Typer(help="Register volunteers' sensors and build what gets flashed.", no_args_is_help=True)
out = Console()


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field: 'lat: Input should be less than or equal to 90; ...'."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "request"
        parts.append(f"{field}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


@device_app.command("register")
def register_cmd(
    name: str = typer.Option(..., "--name", help="A private name for the sensor, e.g. 'balcony'."),
    kind: str = typer.Option(..., "--kind", help="fixed | mobile"),
    sensor: list[str] = typer.Option(..., "--sensor", help="Sensor model (repeat for several): SDS011, BME280 ..."),
    transport: str = typer.Option(..., "--transport", help="lorawan | mqtt | http"),
    lat: float = typer.Option(..., "--lat", help="Exact latitude (kept private)."),
    lon: float = typer.Option(..., "--lon", help="Exact longitude (kept private)."),
    email: str = typer.Option(..., "--email", help="Owner's email (kept private)."),
    consent_public: bool = typer.Option(False, "--consent-public", help="Allow the device's cell on public maps."),
    dev_eui: str | None = typer.Option(None, "--dev-eui", help="LoRaWAN DevEUI (16 hex); generated if absent."),
    chip_id: str | None = typer.Option(None, "--chip-id", help="sensor.community chip id (esp8266-...)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Register a sensor and print its credentials (shown only once)."""
    from civicair.core.console import database_or_exit, fail
    from civicair.firmware_tools.schemas import RegistrationRequest
    from civicair.firmware_tools.service import register_device

    try:
        req = RegistrationRequest.model_validate({
            "name": name, "kind": kind, "sensors": sensor, "transport": transport, "lat": lat, "lon": lon,
            "email": email, "consent_public": consent_public, "dev_eui": dev_eui, "chip_id": chip_id})
    except ValidationError as exc:
        fail(validation_message(exc))
    settings, db = database_or_exit()
    try:
        with db.engine.begin() as conn:
            result = register_device(conn, settings, req)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    c = result.credentials
    out.print(f"[bold green]registered[/] {result.uid}  (public id {result.pseudonym})")
    out.print(f"public page: {result.public_url}")
    out.print(f"device token: [bold]{c.device_token}[/]")
    if c.mqtt_username:
        out.print(f"MQTT username: {c.mqtt_username}\nMQTT password: [bold]{c.mqtt_password}[/]\n"
                  f"MQTT topic: {c.mqtt_topic}\n"
                  "(operator: run `civicair mosquitto sync` so the broker accepts this password)")
    if c.lorawan:
        out.print(f"DevEUI: {c.lorawan.dev_eui}\nJoinEUI: {c.lorawan.join_eui}\nAppKey: [bold]{c.lorawan.app_key}[/]")
    if result.chirpstack:
        out.print(f"ChirpStack: {result.chirpstack}")
    out.print(f"[yellow]{result.notice}[/]")


@device_app.command("bundle")
def bundle_cmd(
    uid: str = typer.Argument(..., help="Device id (ca-...)."),
    out_dir: Path = typer.Option(..., "--out", help="Directory to write the bundle into."),
) -> None:
    """Write the flash bundle (config.json, airrohr settings, NVS CSV, label, README) of a device."""
    from civicair.core.console import database_or_exit, fail
    from civicair.firmware_tools.service import bundle_files, device_by_uid

    settings, db = database_or_exit()
    try:
        with db.engine.connect() as conn:
            row = device_by_uid(conn, uid)
        # Secrets are stored only as hashes: the bundle carries placeholders for them.
        files = bundle_files(settings, row)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (out_dir / fname).write_bytes(data)
    out.print(json.dumps({"out": str(out_dir), "files": sorted(files)}))


@device_app.command("check")
def check_cmd(
    uid: str = typer.Argument(..., help="Device id (ca-...)."),
    wait: float = typer.Option(300, "--wait", help="Seconds to wait for the first uplink."),
    since_minutes: float = typer.Option(60, "--since-minutes", help="Look back this far for messages."),
) -> None:
    """Wait for a device's first uplink; when nothing arrives, say the most likely reason.
    Exit 0 when data arrived, 1 otherwise."""
    from civicair.core.console import console, database_or_exit, fail
    from civicair.firmware_tools.check import run_check

    settings, db = database_or_exit()
    try:
        report = run_check(db.engine, settings, uid, wait_s=wait, since_minutes=since_minutes, console=console)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    out.print(f"verdict: {report.verdict}")
    out.print(report.render(), highlight=False)
    if not report.arrived:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    app.add_typer(device_app, name="device")
