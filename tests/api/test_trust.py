"""Issue 19 items 1-5 and 21, each as the attack the probe made, over real HTTP: devices are
registered and push their data through the public volunteer API, an operator approves with an
`operator`-scoped partner key, and the public API is read as anyone would.

1. sybils: k−1 fresh (or approved but implausible) devices cannot make a lone established
   bike's cell-hours public;
2. sliding windows: no answer of /v1/mobile/cells depends on where in an hour a range starts or ends;
3. zone poisoning: three fresh devices in an empty cell publish nothing;
4. a bike's first/last seen are public as UTC days only;
5. /v1/zones n_devices counts published devices only;
21. privacy zones set through the volunteer API take effect on the public cells.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.repository import create_partner_key
from civicair.core import tables
from civicair.core.security import hash_secret, new_api_key

from tests.seed import refresh_mobile

pytestmark = pytest.mark.db

# yesterday's 08:00: a past hour within the readings' clock window (older ones are flagged)
H = (datetime.now(UTC) - timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
M_PER_DEG_LAT = 111_195.0
START = (48.583321, 7.745987)


def operator_key(db) -> str:  # type: ignore[no-untyped-def]
    key = new_api_key()
    with db.engine.begin() as conn:
        create_partner_key(conn, "ops", hash_secret(key), ["operator"])
    return key


def register(base: str, kind: str = "mobile", lat: float = 48.58, lon: float = 7.75, **extra: Any) -> dict[str, Any]:
    r = httpx.post(f"{base}/v1/volunteer/devices", timeout=10, json={
        "name": "x", "kind": kind, "sensors": ["SDS011"], "transport": "http", "lat": lat, "lon": lon,
        "email": "someone@example.org", "consent_public": True, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def push(base: str, device: dict[str, Any], items: list[dict[str, Any]]) -> None:
    for i in range(0, len(items), 200):
        r = httpx.post(f"{base}/v1/push", json=items[i:i + 200], timeout=30,
                       headers={"Authorization": f"Bearer {device['credentials']['device_token']}"})
        assert r.status_code == 201, r.text


def ride(start: datetime, *, offset_m: float = 0.0, n: int = 61, step_m: float = 40.0, every_s: int = 12,
         value: float = 20.0) -> list[dict[str, Any]]:
    """A 2.4 km northward ride at 12 km/h (pm25 = value)."""
    return [{"time": (start + timedelta(seconds=every_s * i)).isoformat(), "readings": {"pm25": value},
             "location": {"lat": round(START[0] + i * step_m / M_PER_DEG_LAT, 7),
                          "lon": round(START[1] + offset_m / (M_PER_DEG_LAT * math.cos(math.radians(START[0]))), 7)}}
            for i in range(n)]


def grid(start: datetime, value: float = 999.0) -> list[dict[str, Any]]:
    """The probe's attack: a dense grid over the route, pushed within seconds."""
    return [{"time": (start + timedelta(seconds=i // 20)).isoformat(), "readings": {"pm25": value},
             "location": {"lat": round(START[0] + (i % 20) * 0.0012, 7), "lon": round(START[1] + (i // 20 - 2) * 0.0015, 7)}}
            for i in range(100)]


def set_publication(base: str, key: str, uid: str, verb: str) -> dict[str, Any]:
    r = httpx.post(f"{base}/v1/operator/devices/{uid}/{verb}", headers={"X-API-Key": key}, json={"note": "test"},
                   timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def cells(base: str, **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/v1/mobile/cells", timeout=10, params={
        "quantity": "pm25", "datetime_from": H.isoformat(), "datetime_to": (H + timedelta(hours=1)).isoformat(),
        **params})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def rollup(db) -> None:  # type: ignore[no-untyped-def]
    with db.engine.begin() as conn:
        refresh_mobile(conn)


def test_sybils_cannot_make_a_lone_established_bike_public(db, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    key = operator_key(db)
    victim = register(base)
    set_publication(base, key, victim["uid"], "approve")  # an established volunteer
    push(base, victim, ride(H + timedelta(minutes=10)))
    # k − 1 = 2 freshly self-registered devices riding along (plausibly), and one pushing a grid
    followers = [register(base), register(base)]
    for i, f in enumerate(followers):
        push(base, f, ride(H + timedelta(minutes=11 + i), offset_m=15.0 * (1 + i), value=30.0))
    gridder = register(base)
    push(base, gridder, grid(H + timedelta(minutes=20)))
    rollup(db)
    assert cells(base) == []  # fresh devices count toward no k: the victim's cells stay hidden
    listed = httpx.get(f"{base}/v1/devices", timeout=10).json()["results"]
    assert [d["pseudonym"] for d in listed] == [victim["pseudonym"]]  # and are not public at all

    # patient attackers past review: the grid is no plausible movement, so victim + 1 follower < k
    for attacker in (gridder, followers[0]):
        set_publication(base, key, attacker["uid"], "approve")
    assert cells(base) == []
    # a third plausible established rider: the shared cells are public, with exactly these three
    set_publication(base, key, followers[1]["uid"], "approve")
    published = cells(base)
    assert published and all(c["n_devices"] == 3 for c in published)
    assert all(c["summary"]["max"] <= 30.0 for c in published)  # no grid value (999) in any cell
    # withholding one of them: it counts no more, back under k
    set_publication(base, key, followers[1]["uid"], "withhold")
    assert cells(base) == []


def test_no_mobile_answer_depends_on_sub_hour_window_edges(db, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    key = operator_key(db)
    riders = [register(base) for _ in range(3)]
    for i, r in enumerate(riders):
        set_publication(base, key, r["uid"], "approve")
        # three trips of 12 minutes across the hour: 08:10-08:22 ... and a second ride 08:40-08:52
        push(base, r, ride(H + timedelta(minutes=10, seconds=20 * i)) + ride(H + timedelta(minutes=40 + i)))
    rollup(db)
    whole = cells(base)
    assert whole and {c["period"]["datetime_from"] for c in whole} == {H.isoformat()}
    # the probe: slide datetime_from (and datetime_to) through the hour in 30 s steps
    for s in range(0, 3600, 30):
        lo = H + timedelta(seconds=s)
        assert cells(base, datetime_from=lo.isoformat()) == whole, f"answer changed at from = +{s} s"
        hi = H + timedelta(seconds=s + 1)
        assert cells(base, datetime_to=hi.isoformat()) == whole, f"answer changed at to = +{s + 1} s"
    meta = httpx.get(f"{base}/v1/mobile/cells", timeout=10, params={
        "datetime_from": (H + timedelta(minutes=17)).isoformat(),
        "datetime_to": (H + timedelta(minutes=18)).isoformat()}).json()["meta"]
    assert (meta["datetime_from"], meta["datetime_to"]) == (H.isoformat(), (H + timedelta(hours=1)).isoformat())
    # the next hour is a different answer (nothing there), the previous too
    assert cells(base, datetime_from=(H + timedelta(hours=1)).isoformat(),
                 datetime_to=(H + timedelta(hours=2)).isoformat()) == []
    # paging walks the same rows in (hour, cell) order
    pages, cursor = [], None
    while True:
        params = {"quantity": "pm25", "datetime_from": H.isoformat(), "limit": "2",
                  "datetime_to": (H + timedelta(hours=1)).isoformat(), **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{base}/v1/mobile/cells", params=params, timeout=10).json()
        pages += body["results"]
        cursor = body["meta"]["cursor"]
        if not cursor:
            break
    assert pages == whole
    assert httpx.get(f"{base}/v1/mobile/cells", params={"cursor": "bm9wZQ"}, timeout=10).status_code == 422


def test_fresh_devices_cannot_poison_an_empty_zone(db, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    key = operator_key(db)
    cell = h3.latlng_to_cell(48.6200, 7.8100, 9)
    lat, lon = h3.cell_to_latlng(cell)
    fakes = [register(base, kind="fixed", lat=lat + 0.0002 * i, lon=lon) for i in range(3)]
    assert {f["h3_cell"] for f in fakes} == {cell}
    for f in fakes:
        push(base, f, [{"time": (H + timedelta(minutes=5 * m)).isoformat(), "readings": {"pm25": 480.0}}
                       for m in range(12)])
    series = httpx.get(f"{base}/v1/zones/{cell}/series", timeout=10, params={
        "datetime_from": H.isoformat(), "datetime_to": (H + timedelta(hours=2)).isoformat()}).json()
    assert series["results"] == []
    zones = httpx.get(f"{base}/v1/zones", timeout=10).json()["results"]
    assert cell not in {z["id"] for z in zones}
    assert httpx.get(f"{base}/v1/devices/{fakes[0]['pseudonym']}/series", timeout=10).status_code == 404
    # once an operator approves them (they are real after all), the zone publishes
    for f in fakes:
        set_publication(base, key, f["uid"], "approve")
    series = httpx.get(f"{base}/v1/zones/{cell}/series", timeout=10, params={
        "datetime_from": H.isoformat(), "datetime_to": (H + timedelta(hours=2)).isoformat()}).json()
    assert [r["n_devices"] for r in series["results"]] == [3]


def test_devices_pass_the_qa_window_unless_unreliable(db, serve) -> None:
    base = serve(api_cache_ttl_s=0, publication_qa_days=2)
    dev = register(base, kind="fixed")
    push(base, dev, [{"time": H.isoformat(), "readings": {"pm25": 5.0}}])

    def public() -> bool:
        return dev["pseudonym"] in {d["pseudonym"] for d in httpx.get(f"{base}/v1/devices", timeout=10).json()["results"]}

    assert not public()
    with db.engine.begin() as conn:  # its first data arrived three days ago: past the 2-day window
        conn.execute(sa.update(tables.devices).values(first_received_at=datetime.now(UTC) - timedelta(days=3)))
    assert public()
    with db.engine.begin() as conn:
        conn.execute(sa.update(tables.devices).values(status="unreliable"))
    assert not public()
    base2 = serve(api_cache_ttl_s=0, publication_qa_days=2, publication_requires_approval=True)
    with db.engine.begin() as conn:
        conn.execute(sa.update(tables.devices).values(status="reliable"))
    assert dev["pseudonym"] not in {d["pseudonym"] for d in httpx.get(f"{base2}/v1/devices", timeout=10).json()["results"]}


def test_a_bikes_first_and_last_seen_are_public_as_days_only(db, city, live_api) -> None:
    first, last = datetime(2026, 11, 20, 7, 42, 13, tzinfo=UTC), datetime(2026, 11, 30, 18, 3, 59, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(sa.update(tables.devices).values(first_seen=first, last_seen=last))
    with httpx.Client(base_url=live_api) as client:
        devices = client.get("/v1/devices", params={"limit": 1000}).json()["results"]
        csv_text = client.get("/v1/devices", params={"format": "csv"}).text
    by_kind: dict[str, set[tuple[str, str]]] = {}
    for d in devices:
        by_kind.setdefault(d["kind"], set()).add((d["first_seen"], d["last_seen"]))
    # the probe read each bike's riding schedule to the second from these fields
    assert by_kind["mobile"] == {("2026-11-20T00:00:00+00:00", "2026-11-30T00:00:00+00:00")}
    assert by_kind["fixed"] == {("2026-11-20T07:42:13+00:00", "2026-11-30T18:03:59+00:00")}
    assert csv_text.count("07:42:13") == len([d for d in devices if d["kind"] == "fixed"])


def test_zone_list_counts_published_devices_only(city, live_api) -> None:
    zones = {z["id"]: z for z in httpx.get(f"{live_api}/v1/zones", timeout=10).json()["results"]}
    # F1-F4 consent and are reliable; F5 is unreliable, F6 gave no consent: the probe saw 6 here
    assert zones[city.zone_id]["n_devices"] == 4


def test_privacy_zones_set_through_the_volunteer_api_hide_points(db, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    key = operator_key(db)
    riders = [register(base) for _ in range(3)]
    for i, r in enumerate(riders):
        set_publication(base, key, r["uid"], "approve")
        push(base, r, ride(H + timedelta(minutes=10, seconds=20 * i)))
    rollup(db)
    before = {c["h3_cell"] for c in cells(base)}
    middle = (START[0] + 30 * 40 / M_PER_DEG_LAT, START[1])  # the 30th point: the middle of the ride
    hidden = h3.latlng_to_cell(*middle, 9)
    assert hidden in before
    token = riders[0]["credentials"]["device_token"]
    url = f"{base}/v1/volunteer/device/privacy-zones"
    bad = httpx.put(url, json={"zones": [{"lat": 91, "lon": 0, "radius_m": 100}]},
                    headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bad.status_code == 422
    r = httpx.put(url, json={"zones": [{"lat": middle[0], "lon": middle[1], "radius_m": 400}]},
                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["zones"][0]["radius_m"] == 400
    # at once: the rider's points are in no public cell (2 riders left < k) until the rollup ran
    assert cells(base) == []
    rollup(db)
    after = {c["h3_cell"] for c in cells(base)}
    assert after and hidden not in after and after < before
    fixed = register(base, kind="fixed")
    refused = httpx.put(url, json={"zones": []}, headers={"Authorization": f"Bearer {fixed['credentials']['device_token']}"},
                        timeout=10)
    assert refused.status_code == 422
