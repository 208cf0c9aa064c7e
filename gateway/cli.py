"""`civicair` commands of the gateway package: `quarantine list|attach|replay`, `mosquitto sync`."""

from __future__ import annotations

from pathlib import Path

import typer

quarantine_app = typer.Typer(help="Messages from unknown devices: list, attach to a device, replay.",
                             no_args_is_help=True)
mosquitto_app = typer.Typer(help="Mosquitto password/ACL files from the devices table.", no_args_is_help=True)


def _db():
    from civicair.core.console import database_or_exit

    return database_or_exit()


@quarantine_app.command("list")
def quarantine_list(
    all_: bool = typer.Option(False, "--all", help="Include replayed entries."),
    limit: int = typer.Option(100, min=1),
) -> None:
    """Quarantined messages (unknown device): id, time, source, device reference, size."""
    from civicair.gateway import repository

    _, db = _db()
    try:
        with db.engine.connect() as conn:
            rows = repository.list_quarantine(conn, include_replayed=all_, limit=limit)
    finally:
        db.close()
    if not rows:
        typer.echo("quarantine is empty")
    for r in rows:
        state = "replayed" if r.replayed_at else (f"attached to device {r.device_id}" if r.device_id else "waiting")
        typer.echo(f"{r.id}\t{r.received_at:%Y-%m-%dT%H:%M:%SZ}\t{r.source}\t{r.ref_scheme}={r.ref_value}"
                   f"\t{r.size} B\t{r.topic}\t{state}")


@quarantine_app.command("attach")
def quarantine_attach(
    entry_id: int = typer.Argument(..., metavar="ID"),
    device_uid: str = typer.Argument(..., metavar="DEVICE_UID"),
    remember: bool = typer.Option(False, "--remember",
                                  help="Also record the message's DevEUI / TTS id / chip id on the device."),
) -> None:
    """Attach a quarantined message to a registered device (then run `replay`)."""
    from civicair.core.console import fail
    from civicair.core.errors import CivicairError
    from civicair.gateway.service import attach_quarantined

    _, db = _db()
    try:
        typer.echo(attach_quarantined(db, entry_id, device_uid, remember=remember))
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()


@quarantine_app.command("replay")
def quarantine_replay() -> None:
    """Store every attached, not yet replayed message for its device (idempotent)."""
    from civicair.gateway.routing import TopicRouter
    from civicair.gateway.service import replay_quarantined

    settings, db = _db()
    try:
        r = replay_quarantined(db, TopicRouter.from_settings(settings))
    finally:
        db.close()
    typer.echo(f"replayed {r.messages} message(s): {r.readings_written} reading(s) written, "
               f"{r.dead_letters} dead letter(s)")


@mosquitto_app.command("sync")
def mosquitto_sync(
    password_file: Path = typer.Option(..., "--password-file", help="Mosquitto password_file to (re)write."),
    acl_file: Path = typer.Option(..., "--acl-file", help="Mosquitto acl_file to (re)write."),
    gateway_user: str | None = typer.Option(None, help="Gateway service user (default: from CIVICAIR_MQTT_URL)."),
    gateway_password: str | None = typer.Option(None, envvar="CIVICAIR_MQTT_GATEWAY_PASSWORD",
                                                help="Its password (default: from CIVICAIR_MQTT_URL)."),
    chirpstack_user: str | None = typer.Option(None, help="ChirpStack's MQTT integration user (may use the "
                                               "ChirpStack topic prefix)."),
    chirpstack_password: str | None = typer.Option(None, envvar="CHIRPSTACK_MQTT_PASSWORD"),
) -> None:
    """(Re)write Mosquitto's password and ACL files from the devices table; reload the broker after."""
    from civicair.gateway.service import sync_mosquitto_files
    from civicair.gateway.worker import sync_arguments

    settings, db = _db()
    arguments = sync_arguments(settings, gateway_user, gateway_password, chirpstack_user, chirpstack_password)
    try:
        r = sync_mosquitto_files(db, password_file, acl_file, **arguments)
    finally:
        db.close()
    typer.echo(f"{'wrote' if r.changed else 'unchanged:'} {password_file} and {acl_file}: {r.devices} device(s)"
               + (f", gateway user {arguments['gateway_user']}" if arguments["gateway_user"] else ""))
    for uid in r.skipped:
        typer.echo(f"skipped device {uid}: MQTT username or password hash not usable", err=True)


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(mosquitto_app, name="mosquitto")
