"""`civicair` commands of the gateway package: `quarantine list|attach|replay`,
`deadletters list|show|replay`, `mosquitto sync`."""

from __future__ import annotations

from pathlib import Path

import typer

quarantine_app = typer.Typer(help="Messages from unknown devices: list, attach to a device, replay.",
                             no_args_is_help=True)
mosquitto_app = typer.Typer(help="Mosquitto password/ACL files from the devices table.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Messages that could not be decoded or stored: list, show, replay "
                              "(e.g. after adding a codec).", no_args_is_help=True)


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


@deadletters_app.command("list")
def deadletters_list(
    all_: bool = typer.Option(False, "--all", help="Include replayed entries."),
    source: str | None = typer.Option(None, "--source", help="chirpstack, tts, mqtt, http or sensor_community."),
    device: str | None = typer.Option(None, "--device", help="Only those naming this device (uid, DevEUI, ...)."),
    error: str | None = typer.Option(None, "--error", help="Only those whose error contains this text."),
    before: int | None = typer.Option(None, "--before", help="Page back: entries older than this id."),
    limit: int = typer.Option(100, min=1),
) -> None:
    """Dead letters, newest first: id, time, source, device, size, topic, state, error."""
    from civicair.gateway import dead_letters

    _, db = _db()
    try:
        rows = dead_letters.list_dead_letters(db, include_replayed=all_, source=source, device_uid=device,
                                              error_contains=error, before_id=before, limit=limit)
        refused = dead_letters.overflow(db)
    finally:
        db.close()
    if not rows:
        typer.echo("no dead letters" + ("" if all_ else " waiting (--all shows the replayed ones)"))
    for r in rows:
        state = ("replayed" if r.replayed_at else f"replay failed: {r.replay_error[:60]}" if r.replay_error
                 else "waiting")
        typer.echo(f"{r.id}\t{r.received_at:%Y-%m-%dT%H:%M:%SZ}\t{r.source}\t{r.device or '-'}\t{r.size} B"
                   f"\t{r.topic}\t{state}\t{r.error[:100]}")
    for o in refused:
        typer.echo(f"not kept ({o.table} quota full): {o.refused} message(s), {o.refused_bytes} B from "
                   f"{o.device or 'messages naming no registered device'}, last at {o.last_at:%Y-%m-%dT%H:%M:%SZ}",
                   err=True)


@deadletters_app.command("show")
def deadletters_show(
    entry_id: int = typer.Argument(..., metavar="ID"),
    raw: bool = typer.Option(False, "--raw", help="Write only the payload bytes to stdout."),
) -> None:
    """One dead letter: metadata, error, and its payload (text, else a hex dump)."""
    import sys

    from civicair.core.console import fail
    from civicair.core.errors import CivicairError
    from civicair.gateway import dead_letters

    _, db = _db()
    try:
        entry = dead_letters.get_dead_letter(db, entry_id)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    if raw:
        sys.stdout.buffer.write(entry.payload)
        return
    s = entry.summary
    for label, value in (("id", s.id), ("received", f"{s.received_at:%Y-%m-%dT%H:%M:%S.%fZ}"), ("source", s.source),
                         ("topic", s.topic), ("device", s.device or "-"), ("size", f"{s.size} B"),
                         ("error", s.error), ("replayed", s.replayed_at or "no"),
                         ("replay error", s.replay_error or "-")):
        typer.echo(f"{label:>12}: {value}")
    text = dead_letters.payload_text(entry.payload)
    typer.echo("     payload:")
    typer.echo(text if text is not None else "\n".join(dead_letters.hex_dump(entry.payload)))


@deadletters_app.command("replay")
def deadletters_replay(
    entry_ids: list[int] = typer.Argument(None, metavar="[ID]...", help="Entries to replay."),
    all_: bool = typer.Option(False, "--all", help="Every waiting entry (narrowed by the options below)."),
    source: str | None = typer.Option(None, "--source"),
    device: str | None = typer.Option(None, "--device"),
    error: str | None = typer.Option(None, "--error", help="Only those whose error contains this text."),
) -> None:
    """Decode entries again with today's code and store them through the normal writer
    (idempotent); an entry that fails again stays, with the new error."""
    from civicair.core.console import fail
    from civicair.gateway import dead_letters
    from civicair.gateway.routing import TopicRouter

    if bool(entry_ids) == all_:
        fail("give entry ids, or --all (with --source/--device/--error to narrow it)")
    settings, db = _db()
    try:
        ids = list(entry_ids or [])
        if all_:
            before = None
            while page := dead_letters.list_dead_letters(db, source=source, device_uid=device, error_contains=error,
                                                         before_id=before, limit=1000):
                ids += [r.id for r in page]
                before = page[-1].id
            ids.sort()
        results = dead_letters.replay_dead_letters(db, TopicRouter.from_settings(settings), ids)
    finally:
        db.close()
    for r in results:
        if r.replayed:
            typer.echo(f"{r.id}\treplayed\t{r.messages} message(s), {r.readings_written} reading(s) written"
                       f"\t{', '.join(r.outcomes)}")
        else:
            typer.echo(f"{r.id}\tnot replayed\t{r.error}")
    done = sum(r.replayed for r in results)
    typer.echo(f"replayed {done} of {len(results)} dead letter(s)")


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
    app.add_typer(deadletters_app, name="deadletters")
    app.add_typer(mosquitto_app, name="mosquitto")
