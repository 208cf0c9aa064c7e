"""Public URLs follow where the API really listens (docs/open-data.md#public-urls), in real
processes: `civicair up` on a non-default port with an embedded broker on a port of its own, and
no CIVICAIR_PUBLIC_BASE_URL: every URL of the catalogue (dataset URIs, downloads, hydra:next), the
`Link` headers, the Parquet metadata written by `civicair export`, the flash bundle and its QR
label name that port, and the bundle names the broker that runs. With CIVICAIR_PUBLIC_BASE_URL set
(and port 0: the kernel's choice), that URL wins everywhere."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import pyarrow.parquet as pq
import pytest
from civicair.core.broker import free_port
from PIL import Image
from rdflib import Graph, URIRef

from tests.conftest import REPO, wait_until
from tests.firmware_tools.esphome_check import load
from tests.open_export.fixture import seed
from tests.seed import SECRET

pytestmark = [pytest.mark.db, pytest.mark.slow]
URL = re.compile(r"https?://[^\s\"'<>)]+")


def env_for(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update(CIVICAIR_DATABASE_URL=database_url, CIVICAIR_DATA_DIR=str(data_dir), CIVICAIR_PSEUDONYM_SECRET=SECRET,
               **{f"CIVICAIR_{k.upper()}": v for k, v in extra.items()})
    return env


@contextmanager
def civicair_up(env: dict[str, str], log: Path) -> Iterator[list[str]]:
    """`civicair up` until the API says where it listens; its output goes to `log` (a pipe nobody
    reads would fill up and stall it)."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "up"], cwd=REPO, env=env, text=True,
                                stdout=out, stderr=subprocess.STDOUT)
    lines: list[str] = []
    try:
        def listening() -> bool:
            assert proc.poll() is None, log.read_text()
            lines[:] = log.read_text().splitlines(keepends=True)
            return any(line.startswith("api: listening on") for line in lines)

        wait_until(listening, 60, interval=0.2, message="civicair up listening")
        yield lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def served_port(lines: list[str]) -> int:
    m = re.search(r"api: listening on 127\.0\.0\.1:(\d+)", "".join(lines))
    assert m, lines
    return int(m.group(1))


def wait_for(base: str) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"{base}/catalog.ttl", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 30, interval=0.2, message=f"{base} serving")


def catalogue_urls(base: str, public: str | None = None) -> set[str]:
    """Every URI of every Hydra page; `public`: the configured URL the pages name (reached at `base`)."""
    found: set[str] = set()
    url: str | None = f"{base}/catalog.ttl?page_size=2"
    while url:
        g = Graph().parse(data=httpx.get(url, timeout=10).text, format="turtle")
        found |= {str(t) for triple in g for t in triple if isinstance(t, URIRef)}
        nxt = next(iter(g.objects(None, URIRef("http://www.w3.org/ns/hydra/core#next"))), None)
        url = str(nxt) if nxt else None
        if url:
            found.add(url)
            url = base + url.removeprefix(public) if public else url
    return found


def ours(urls: set[str]) -> set[str]:
    """The URLs civicair builds for itself (not vocabularies, licences or the portal)."""
    return {u for u in urls if any(p in u for p in ("/catalog", "/exports/", "/v1/", "/datasets/"))
            and "data.example-metropole.fr" not in u}


def test_every_public_url_follows_the_api_port_and_the_bundle_the_running_broker(db, database_url, tmp_path) -> None:
    today = datetime.now(UTC).date()
    seed(db.engine, today)
    api_port, broker_port = free_port(), free_port()
    env = env_for(database_url, tmp_path, api_port=str(api_port), embedded_broker_port=str(broker_port),
                  mqtt_client_id=f"urls-{api_port}")
    # the export CLI derives the same public URL from the same settings
    export = subprocess.run([sys.executable, "-m", "civicair.cli", "export", "--date", today.isoformat()],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert export.returncode == 0, export.stderr
    base = f"http://127.0.0.1:{api_port}"
    meta = pq.read_schema(tmp_path / "exports" / "zone-hourly" / f"zone-hourly_{today.isoformat()}.parquet").metadata
    assert meta[b"civicair:catalogue_url"].decode() == f"{base}/catalog.jsonld"
    assert meta[b"civicair:landing_page"].decode() == f"{base}/datasets/zone-hourly"

    with civicair_up(env, tmp_path / "up.log") as lines:
        assert served_port(lines) == api_port
        assert f"broker: embedded amqtt at mqtt://127.0.0.1:{broker_port}" in "".join(lines)
        wait_for(base)
        mine = ours(catalogue_urls(base))
        assert len(mine) > 50 and all(u.startswith(f"{base}/") for u in mine), sorted(mine)[:5]
        assert not any(":8000" in u for u in mine)
        for path in ("/v1/devices", "/exports/zone-hourly/today.csv", "/catalog.jsonld"):
            links = set(URL.findall(httpx.get(f"{base}{path}").headers["link"]))
            assert {u for u in links if "127.0.0.1" in u} and all(
                u.startswith(base) for u in links if "127.0.0.1" in u), (path, links)
        paged = httpx.get(f"{base}/v1/devices", params={"limit": 1, "format": "csv"})
        assert f'<{base}/v1/devices?limit=1&format=csv&cursor=' in paged.headers["link"]

        # a volunteer registers an MQTT sensor and downloads its bundle
        form = {"name": "balcony", "kind": "fixed", "sensors": ["SDS011"], "transport": "mqtt", "lat": 48.58,
                "lon": 7.75, "email": "vol@example.org", "consent_public": True}
        reg = httpx.post(f"{base}/v1/volunteer/devices", json=form, timeout=10)
        assert reg.status_code == 201, reg.text
        creds = reg.json()["credentials"]
        assert reg.json()["public_url"].startswith(f"{base}/sensors/")  # the sensor's page
        bundle = httpx.get(f"{base}/v1/volunteer/device/bundle.zip",
                           headers={"Authorization": f"Bearer {creds['device_token']}"}, timeout=10)
        assert bundle.status_code == 200, bundle.text
        with zipfile.ZipFile(io.BytesIO(bundle.content)) as z:
            config = load(next(z.read(n) for n in z.namelist() if n.endswith("esphome.yaml")))
            label = next(z.read(n) for n in z.namelist() if n.endswith("label.png"))
            airrohr = next(z.read(n) for n in z.namelist() if n.endswith("airrohr.txt")).decode()
        assert (config["mqtt"]["broker"], config["mqtt"]["port"]) == ("127.0.0.1", broker_port)
        assert f"Port: {urlsplit(base).port}" in airrohr and "Server: 127.0.0.1" in airrohr
        zxingcpp = pytest.importorskip("zxingcpp")
        (qr,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(label)))
        assert qr.text == reg.json()["public_url"]
        # the broker the bundle names is the one that runs: a real MQTT CONNACK there
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{broker_port}",
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(creds["mqtt_username"], creds["mqtt_password"])
        assert client.connect("127.0.0.1", broker_port, keepalive=10) == mqtt.MQTT_ERR_SUCCESS
        client.disconnect()


def test_a_configured_public_url_wins_on_any_port(db, database_url, tmp_path) -> None:
    seed(db.engine, datetime.now(UTC).date())
    public = "https://air.example-metropole.test"
    env = env_for(database_url, tmp_path, api_port="0", public_base_url=public + "/",
                  mqtt_client_id=f"urls-public-{os.getpid()}")
    subprocess.run([sys.executable, "-m", "civicair.cli", "export", "--date", datetime.now(UTC).date().isoformat()],
                   cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True)
    with civicair_up(env, tmp_path / "up.log") as lines:
        port = served_port(lines)  # port 0: the one the kernel gave
        assert port != 0 and f"api: public URL {public}/docs" in "".join(lines)
        base = f"http://127.0.0.1:{port}"
        wait_for(base)
        # no SMTP server configured: said once at start (sign-ups then skip the e-mail check)
        assert "sign-up: no CIVICAIR_SMTP_URL" in (tmp_path / "up.log").read_text()
        mine = ours(catalogue_urls(base, public))
        assert len(mine) > 50 and all(u.startswith(f"{public}/") for u in mine)
        assert all(str(port) not in u for u in mine)


def test_an_embedded_broker_port_in_use_is_a_clear_error(database_url, tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_for(database_url, tmp_path, api_port=str(free_port()), embedded_broker_port=str(port))
        done = subprocess.run([sys.executable, "-m", "civicair.cli", "up"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr + done.stdout
    assert f"CIVICAIR_EMBEDDED_BROKER_PORT: port {port} on 127.0.0.1 is already in use" in done.stderr + done.stdout
