"""Issue 19 items 8-9, erasure that erases. The probe: day files older than yesterday kept the
erased device's rows; dead letters of LoRaWAN and HTTP devices survived (one with exact
coordinates); a quarantined message under the byte-reversed DevEUI survived; quarantine kept
filling from the erased DevEUI. Here a LoRaWAN device (provisioned in a ChirpStack double that
speaks the real gRPC API) with a TTS id and a chip id is exported, dead-lettered and quarantined
in every form, erased over HTTP, and then no byte of it is left in any table, export file or
catalogue entry except zone aggregates; its DevEUI is deleted from ChirpStack and blocked."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime

import httpx
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.security import ref_hash
from civicair.gateway.codecs import civicair_binary
from civicair.gateway.routing import TopicRouter
from civicair.ingest.writer import Inbound, store_batch
from civicair.open_export.service import run_export
from pydantic import SecretStr

from tests.firmware_tools.test_chirpstack import API_KEY, PROFILE, chirpstack  # noqa: F401 - fixture
from tests.seed import build_hourly

pytestmark = pytest.mark.db

DAY1, DAY2 = date(2026, 11, 2), date(2026, 11, 3)
EUI = "70b3d57ed0001234"
REVERSED = bytes.fromhex(EUI)[::-1].hex()  # 341200d07ed5b370
TTS_ID = "victim-node-1"
CHIP = "esp8266-7654321"
EXACT = (48.583417, 7.745123)


def _register(base: str, **fields: object) -> dict:
    form = {"name": "my balcony", "kind": "fixed", "sensors": ["SDS011"], "transport": "lorawan",
            "lat": EXACT[0], "lon": EXACT[1], "email": "victim@example.org", "owner_name": "Victor Victime",
            "consent_public": True, **fields}
    r = httpx.post(f"{base}/v1/volunteer/devices", json=form, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def _all_table_bytes(conn) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Every row of every table (but the zone aggregates) as text, per table."""
    out = {}
    for table in tables.metadata.sorted_tables:
        if table.name in ("zone_series", "zone_rollup", "quantities"):
            continue
        rows = conn.execute(sa.select(table)).all()
        parts = []
        for r in rows:
            for v in r:
                parts.append(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode())
        out[table.name] = b"\x00".join(parts)
    return out


def _needles(res: dict) -> list[bytes]:
    eui_bytes = bytes.fromhex(EUI)
    return [res["uid"].encode(), res["pseudonym"].encode(), EUI.encode(), EUI.upper().encode(), REVERSED.encode(),
            REVERSED.upper().encode(), TTS_ID.encode(), CHIP.encode(), b"7654321", b"victim@example.org",
            b"Victor Victime", b"my balcony", f"{EXACT[0]}".encode(), f"{EXACT[1]}".encode(),
            base64.b64encode(eui_bytes), eui_bytes, eui_bytes[::-1]]


def test_erasure_leaves_no_byte_of_the_device_anywhere_but_zone_aggregates(
        db, settings, serve, chirpstack, tmp_path) -> None:  # noqa: F811 - fixture
    fake, cs_url = chirpstack
    conf = {"chirpstack_url": cs_url, "chirpstack_api_key": SecretStr(API_KEY), "chirpstack_application_id": "app-1",
            "chirpstack_device_profile_id": PROFILE, "export_dir": tmp_path / "exports"}
    base = serve(**conf)
    conf_settings = settings.model_copy(update=conf)
    victim = _register(base, dev_eui=EUI, chip_id=CHIP)
    other = _register(base, name="other", lat=48.60, lon=7.70, email="other@example.org", owner_name="Olga",
                      dev_eui="70b3d57ed0009999")
    assert EUI in fake.devices
    token = victim["credentials"]["device_token"]
    with db.engine.begin() as conn:
        d = tables.devices
        ids = dict(conn.execute(sa.select(d.c.uid, d.c.id)).all())
        conn.execute(sa.update(d).where(d.c.uid == victim["uid"]).values(tts_device_id=TTS_ID))
        conn.execute(sa.update(d).values(publication="approved", first_seen=datetime(2026, 11, 1, tzinfo=UTC)))
        rows = []
        for day in (DAY1, DAY2):
            for h in range(0, 24, 6):
                t = datetime(day.year, day.month, day.day, h, 10, tzinfo=UTC)
                rows += [{"device_id": ids[u], "time": t, "quantity": 2, "value": 10.0 + h} for u in ids]
        conn.execute(sa.insert(tables.readings), rows)
        build_hourly(conn)
    for kind, day in (("day", DAY1), ("day", DAY2), ("month", DAY1)):
        run_export(conf_settings, db.engine, kind=kind, day=day)
    root = tmp_path / "exports"
    assert victim["pseudonym"].encode() in (root / "device-hourly" / f"device-hourly_{DAY1}.csv").read_bytes()

    # dead letters and quarantine naming the victim in every way a message can
    coords = json.dumps({"lat": EXACT[0], "lon": EXACT[1]}).encode()
    dl = [("chirpstack", f"application/app/device/{EUI}/event/up", b'{"deviceInfo":{"devEui":"' + EUI.encode() + b'"},' + coords[1:]),
          ("chirpstack", "application/app/device/x/event/up", b'{"devEUI":"' + base64.b64encode(bytes.fromhex(EUI)) + b'"}'),
          ("tts", "v3/app@t/devices/other-name/up", b'{"dev_eui":"' + REVERSED.upper().encode() + b'"}'),
          ("tts", f"v3/app@t/devices/{TTS_ID}/up", b"not json"),
          ("sensor_community", "/v1/push/sensor-community", b'{"esp8266id": "7654321", "sensordatavalues": 3}'),
          ("chirpstack", "application/app/device/70b3d57ed0009999/event/up", b"other's")]
    q = [("chirpstack", f"application/app/device/{REVERSED}/event/up", "dev_eui", REVERSED),
         ("tts", f"v3/app@t/devices/{TTS_ID}/up", "tts_id", TTS_ID),
         ("sensor_community", "/v1/push/sensor-community", "chip_id", CHIP),
         ("chirpstack", "application/app/device/1122334455667788/event/up", "dev_eui", "1122334455667788")]
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.dead_letters), [{"source": s, "topic": t, "payload": p, "error": "bad"}
                                                      for s, t, p in dl])
        conn.execute(sa.insert(tables.quarantine), [{"source": s, "topic": t, "ref_scheme": rs, "ref_value": rv,
                                                     "payload": b"{}"} for s, t, rs, rv in q])
    # a token-authenticated push the gateway cannot parse: a dead letter of the device itself
    bad = httpx.post(f"{base}/v1/push/sensor-community", content=b'{"sensordatavalues": "x", "where": ' + coords + b"}",
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 422, bad.text

    url = f"{base}/v1/volunteer/device"
    code = httpx.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["confirm"]
    done = httpx.delete(url, params={"confirm": code}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert done.status_code == 200, done.text
    counts = done.json()["rows_deleted"]
    assert counts["files"]["rewritten"] >= 6 and "deleted" in counts["chirpstack"]

    # no table holds any of its identifiers, names, position or internal id (zone aggregates aside)
    needles = _needles(victim)
    with db.engine.connect() as conn:
        dumped = _all_table_bytes(conn)
        for table in tables.metadata.sorted_tables:
            if "device_id" in table.c:
                assert conn.execute(sa.select(sa.func.count()).select_from(table)
                                    .where(table.c.device_id == ids[victim["uid"]])).scalar_one() == 0, table.name
        survivors = conn.execute(sa.select(tables.dead_letters.c.payload)).scalars().all()
        quarantined = conn.execute(sa.select(tables.quarantine.c.ref_value)).scalars().all()
    for name, blob in dumped.items():
        for n in needles:
            assert n not in blob, f"{n!r} left in table {name}"
    assert [bytes(p) for p in survivors] == [b"other's"] and quarantined == ["1122334455667788"]

    # no export file, nor the package describing them, nor the catalogue names it
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data = json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
        for n in (victim["pseudonym"].encode(), victim["uid"].encode()):
            assert n not in data, f"{n!r} left in {path.relative_to(root)}"
    assert other["pseudonym"].encode() in (root / "device-hourly" / f"device-hourly_{DAY1}.csv").read_bytes()
    sums = dict(line.split("  ")[::-1] for line in (root / "SHA256SUMS").read_text().splitlines())
    for rel, digest in sums.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel
    if (root / "SHA512SUMS").is_file():
        for line in (root / "SHA512SUMS").read_text().splitlines():
            digest, rel = line.split("  ")
            assert hashlib.sha512((root / rel).read_bytes()).hexdigest() == digest, rel
    listed = {rel for rel in sums if "/" in rel}
    assert listed == {str(p.relative_to(root)) for p in files if p.parent != root}  # every file, no stale one
    package = json.loads((root / "datapackage.json").read_text())
    for res in package["resources"]:
        assert (root / res["path"]).is_file(), res["path"]
        if "hash" in res:  # CSV resources (the other formats are covered by the checksum files)
            assert hashlib.sha256((root / res["path"]).read_bytes()).hexdigest() == res["hash"].removeprefix("sha256:")
            assert (root / res["path"]).stat().st_size == res["bytes"]
    catalogue = httpx.get(f"{base}/catalog.jsonld", timeout=30)
    assert catalogue.status_code == 200 and victim["pseudonym"] not in catalogue.text
    for dataset in ("device-hourly", "devices"):
        for ext in ("csv", "geojson"):
            latest = httpx.get(f"{base}/exports/{dataset}/latest.{ext}", timeout=10)
            assert latest.status_code in (200, 404) and victim["pseudonym"] not in latest.text, (dataset, ext)

    # ChirpStack no longer knows it; its ids are blocked: quarantine stops filling from them
    assert EUI not in fake.devices and ("Delete", EUI) in fake.calls
    router = TopicRouter.from_settings(settings)
    data = base64.b64encode(civicair_binary.encode(pm25=12.0, pm10=20.0)).decode()
    msgs = [(f"application/app/device/{e}/event/up", json.dumps({
        "deduplicationId": f"x-{e}", "time": "2026-11-30T10:00:00Z", "deviceInfo": {"devEui": e},
        "fPort": civicair_binary.VERSION, "data": data}).encode()) for e in (EUI, REVERSED)]
    raw = db.engine.raw_connection()
    try:
        result = store_batch(raw.driver_connection, [Inbound("chirpstack", t, p, datetime.now(UTC), router.decoder_for(t))
                                                    for t, p in msgs], block_key="test-secret")
    finally:
        raw.close()
    assert (result.quarantined, result.blocked, result.dead_letters) == (0, 2, 0)
    with db.engine.connect() as conn:
        blocked = dict(conn.execute(sa.select(tables.blocked_refs.c.ref_hash, tables.blocked_refs.c.messages)).all())
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.quarantine)).scalar_one() == 1
    assert blocked[ref_hash("test-secret", "dev_eui", EUI)] == 1 and blocked[ref_hash("test-secret", "dev_eui", REVERSED)] == 1

    # the owner may register the sensor again: its DevEUI is unblocked then
    again = _register(base, dev_eui=EUI, email="victim2@example.org")
    assert again["uid"] != victim["uid"]
    with db.engine.connect() as conn:
        left = conn.execute(sa.select(tables.blocked_refs.c.ref_hash)).scalars().all()
    assert ref_hash("test-secret", "dev_eui", EUI) not in left
    assert ref_hash("test-secret", "tts_id", TTS_ID) in left and ref_hash("test-secret", "chip_id", CHIP) in left
