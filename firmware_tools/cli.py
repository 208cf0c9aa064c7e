"""`civicair device ...` commands: register a sensor, build its flash bundle; the operator's
publication workflow (`approve`, `withhold`, `pending`) and a mobile device's privacy zones."""

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
    from civicair.core.settings import check_secrets

    settings, db = database_or_exit()
    try:
        check_secrets(settings, demo=False)  # the pseudonym is computed now, once
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
    """Write the flash bundle (ESPHome configuration or LoRaWAN keys, airrohr settings, label, README) of a device."""
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


def _print_publication(rows: list, as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    if not rows:
        out.print("no device")
    for r in rows:
        when = f", QA window ends {r.qa_ends_at:%Y-%m-%d %H:%M} UTC" if r.qa_ends_at else ""
        seen = "no data yet" if r.first_received_at is None else f"first data {r.first_received_at:%Y-%m-%d %H:%M}"
        public = "public" if r.public else ("established, no consent" if r.established else "not public")
        note = f" — {r.note}" if r.note else ""
        out.print(f"{r.uid}  {r.pseudonym}  {r.kind:<6} {r.publication:<8} {public}; {r.status}; {seen}{when}{note}",
                  highlight=False)


def _set_publication(uids: list[str], state: str, note: str | None, as_json: bool) -> None:
    import getpass

    from civicair.core.console import database_or_exit, fail
    from civicair.firmware_tools.publication import set_publication

    settings, db = database_or_exit()
    try:
        with db.engine.begin() as conn:  # all or nothing
            rows = [set_publication(conn, settings, uid, state, note=note, by=f"cli:{getpass.getuser()}")
                    for uid in uids]
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    _print_publication(rows, as_json)


@device_app.command("approve")
def approve_cmd(
    uids: list[str] = typer.Argument(..., help="Device ids (ca-...)."),
    note: str | None = typer.Option(None, "--note", help="Why (kept with the device, private)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Publish devices now, before their QA window ends (they count toward k at once)."""
    _set_publication(uids, "approved", note, as_json)


@device_app.command("withhold")
def withhold_cmd(
    uids: list[str] = typer.Argument(..., help="Device ids (ca-...)."),
    note: str | None = typer.Option(None, "--note", help="Why (kept with the device, private)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Never publish these devices' data (they count toward no k), until approved or reset."""
    _set_publication(uids, "withheld", note, as_json)


@device_app.command("pending")
def pending_cmd(
    uids: list[str] = typer.Argument(None, help="Device ids to return to the automatic rule; none: list."),
    state: str = typer.Option("awaiting", "--state", help="What to list: awaiting (pending, not yet public), "
                              "pending, approved, withheld, established."),
    note: str | None = typer.Option(None, "--note", help="Why (with device ids)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the devices awaiting publication; with device ids, return them to the automatic rule
    (public once past the QA window and not unreliable)."""
    if uids:
        _set_publication(uids, "pending", note, as_json)
        return
    from civicair.core.console import database_or_exit, fail
    from civicair.firmware_tools.publication import list_publication

    settings, db = database_or_exit()
    try:
        with db.engine.connect() as conn:
            rows = list_publication(conn, settings, state, limit=10_000)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    _print_publication(rows, as_json)


def _zone(text: str) -> dict[str, float]:
    parts = text.split(",")
    if len(parts) != 3:
        raise typer.BadParameter(f"{text!r}: give LAT,LON,RADIUS_M")
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: LAT,LON,RADIUS_M must be numbers") from None
    return {"lat": lat, "lon": lon, "radius_m": radius}


@device_app.command("privacy-zones")
def privacy_zones_cmd(
    uid: str = typer.Argument(..., help="Device id (ca-...) of a mobile device."),
    add: list[str] = typer.Option([], "--add", help="LAT,LON,RADIUS_M (repeatable): a circle never published."),
    clear: bool = typer.Option(False, "--clear", help="Remove the existing zones first."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show or change a mobile device's privacy zones (its points inside them are never published)."""
    from civicair.core.console import database_or_exit, fail
    from civicair.firmware_tools.schemas import PrivacyZones
    from civicair.firmware_tools.service import device_by_uid, privacy_zones, set_privacy_zones

    new = [_zone(a) for a in add]
    settings, db = database_or_exit()
    try:
        with db.engine.begin() as conn:
            row = device_by_uid(conn, uid)
            zones = privacy_zones(conn, row.id)
            if new or clear:
                wanted = PrivacyZones.model_validate(
                    {"zones": ([] if clear else [z.model_dump() for z in zones]) + new})
                zones = set_privacy_zones(conn, row.id, wanted.zones)
    except ValidationError as exc:
        fail(validation_message(exc))
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    if as_json:
        print(json.dumps([z.model_dump() for z in zones]))
        return
    out.print(f"{uid}: {len(zones)} privacy zone(s)")
    for z in zones:
        out.print(f"  {z.lat:.6f}, {z.lon:.6f}  radius {z.radius_m:g} m", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    app.add_typer(device_app, name="device")
