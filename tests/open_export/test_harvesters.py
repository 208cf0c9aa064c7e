"""The real harvesters of the portals French cities run, against the live catalogue of a running
civicair (the `portal` fixture), in JSON-LD and Turtle, paged (Hydra, 2 datasets a page), twice:

- udata 17.18's own `DcatBackend` (through `udata.harvest.actions.run`, MongoDB replaced by
  mongomock) creates every dataset, none again on re-harvest, and recognises the licences of its
  register (`lov2`, the stations' `odc-odbl`);
- ckanext-dcat 2.4's harvester (gather stage: fetch, paging, `RDFParser` with the DCAT-AP 2 and 3
  profiles) and CKAN 2.12's own create/update schema accept every dataset, re-harvest creates none,
  and licences are recognised: ODbL by CKAN's default register, Etalab once the portal adds it
  (tests/open_export/harvesters/ckan_licences_etalab.json). CKAN's Solr indexing cannot run here
  (tests/open_export/harvesters/README.md).

Each harvester runs in its own venv (`make harvesters`), as a subprocess printing a JSON report.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from civicair.core.broker import free_port
from civicair.core.db import create_engine
from civicair.open_export.datasets import DEFAULT_DATASETS

from tests.conftest import REPO, wait_until

pytestmark = [pytest.mark.db, pytest.mark.slow]
HARNESS = Path(__file__).resolve().parent / "harvesters"
UDATA = REPO / ".venv-harvest-udata" / "bin" / "python"
CKAN = REPO / ".venv-harvest-ckan" / "bin" / "python"
IDS = {d.id for d in DEFAULT_DATASETS}
MEDIA = {"text/csv", "application/vnd.apache.parquet", "application/geo+json", "application/json"}


def harness(python: Path, script: str, *args: str, timeout: float = 300) -> dict:
    if not python.is_file():
        pytest.skip(f"{python.parent.parent.name} is not built: `make harvesters` builds it (`make test` does)")
    done = subprocess.run([str(python), str(HARNESS / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def urls(portal) -> tuple[str, str]:
    return f"{portal.base}/catalog.jsonld?page_size=2", f"{portal.base}/catalog.ttl?page_size=2"


def expected_licence(dataset_id: str, etalab: str) -> str:
    return "odc-odbl" if dataset_id == "reference-stations" else etalab


def test_udata_creates_every_dataset_and_none_again_on_reharvest(portal) -> None:
    report = harness(UDATA, "harvest_udata.py", *urls(portal), "--runs", "2")
    assert report["versions"]["udata"] == "17.18.0"
    assert len(report["sources"]) == 2  # JSON-LD, Turtle
    for source in report["sources"]:
        first, again = source["runs"]
        assert first["status"] == "done" and first["errors"] == [], first["errors"]
        assert first["pages"] == 3 and first["new_datasets"] == len(IDS)
        assert again["status"] == "done" and again["new_datasets"] == 0  # re-harvest: updates only
        for run in (first, again):
            assert run["items_by_status"] == {"done": len(IDS)}, [i["errors"] for i in run["items"]]
        datasets = {i["remote_id"]: i["dataset"] for i in again["items"]}
        assert set(datasets) == IDS
        for ds_id, ds in datasets.items():
            assert ds["licence"] == expected_licence(ds_id, "lov2"), ds_id
            assert ds["remote_url"] == f"{portal.base}/datasets/{ds_id}"  # the landing page
            assert ds["uri"] == f"{portal.base}/catalog/datasets/{ds_id}"
            assert ds["temporal_coverage"]["end"] == portal.today.isoformat()  # inclusive: today's file
            assert ds["spatial"] == "MultiPolygon" and ds["frequency"] == "daily"
            assert "qualite-de-l-air" in ds["tags"] and "air-quality" in ds["tags"]
            files = [r for r in ds["resources"] if r["type"] != "api"]
            assert files and {r["mime"] for r in ds["resources"]} <= MEDIA, ds["resources"]
            assert {r["format"] for r in files} <= {"csv", "parquet", "geojson"}
            assert all(r["checksum"] is None for r in files)  # udata maps no SHA-512: skipped, no error
            assert all(r["filesize"] for r in files)


def test_udata_does_not_duplicate_a_source_in_the_other_serialisation(portal) -> None:
    jsonld, turtle = urls(portal)
    report = harness(UDATA, "harvest_udata.py", jsonld, turtle, "--runs", "1", "--same-db")
    first, second = (s["runs"][0] for s in report["sources"])
    assert first["new_datasets"] == len(IDS) and second["new_datasets"] == 0


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis of our own when installed (CKAN checks for one at start-up); else an address where
    none listens (CKAN logs it and harvests anyway)."""
    server = shutil.which("redis-server")
    port = free_port()
    if server is None:
        yield f"redis://127.0.0.1:{port}/0"
        return
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(up, 10, message="redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def ckan_database(pg_server_url: str) -> Iterator[str]:
    """A database name for CKAN on the test server (the harness initialises it); dropped after."""
    name = f"ckan_harvest_{uuid.uuid4().hex[:8]}"
    url = sa.engine.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def ckan(portal, tmp_path: Path, db_url: str, redis: str, *args: str) -> dict:
    return harness(CKAN, "harvest_ckan.py", *args, "--workdir", str(tmp_path / "ckan"), "--db-url", db_url,
                   "--redis-url", redis)


def test_ckan_accepts_every_dataset_and_reharvest_creates_none(portal, tmp_path, ckan_database, redis_url) -> None:
    report = ckan(portal, tmp_path, ckan_database, redis_url, *urls(portal), "--runs", "2",
                  "--profiles", "euro_dcat_ap_2", "euro_dcat_ap_3")
    assert report["versions"]["ckan"] == "2.12.0" and report["versions"]["ckanext-dcat"] == "2.4.4"
    assert "etalab-2.0" not in report["licence_register_ids"]  # CKAN's default register
    assert len(report["runs"]) == 4  # 2 profiles x (JSON-LD, Turtle)
    for source in report["runs"]:
        first, again = source["jobs"]
        for job in (first, again):
            assert job["gather_errors"] == [] and job["objects"] == len(IDS)
            assert job["marked_for_deletion"] == []
            assert job["counts"]["rejected"] == 0, [i.get("error") for i in job["items"]]
        assert first["counts"]["created"] == len(IDS) and again["counts"] == {
            "created": 0, "updated": len(IDS), "rejected": 0}  # re-harvest: updates only
        validated = {i["validated"]["extras"]["identifier"]: i["validated"] for i in again["items"]}
        assert set(validated) == IDS
        for ds_id, ds in validated.items():
            # ODbL is in CKAN's default register; Etalab is not (README: the portal adds it)
            assert ds["license_id"] == expected_licence(ds_id, ""), ds_id
            assert ds["url"] == f"{portal.base}/datasets/{ds_id}"
            assert ds["extras"]["uri"] == ds["extras"]["guid"] == f"{portal.base}/catalog/datasets/{ds_id}"
            assert json.loads(ds["extras"]["spatial"])["type"] == "Polygon"  # what ckanext-spatial indexes
            assert ds["extras"]["temporal_end"] == portal.today.isoformat()
            assert len(json.loads(ds["extras"]["language"])) == 2
            assert "qualité de l air" in ds["tags"] and "air quality" in ds["tags"]
            formats = {r["format"] for r in ds["resources"]}
            assert formats <= {"CSV", "GeoJSON", "JSON", "http://publications.europa.eu/resource/authority/file-type/PARQUET"}
            assert {r["mimetype"] for r in ds["resources"]} <= MEDIA
    # the hashes CKAN stored are the files' SHA-512
    resource = next(r for r in validated["zone-hourly"]["resources"] if r["url"].endswith("/latest.csv"))
    assert resource["hash"] == hashlib.sha512(httpx.get(resource["url"]).content).hexdigest()


def test_ckan_recognises_etalab_once_the_portal_registers_it(portal, tmp_path, ckan_database, redis_url) -> None:
    register = f"file://{HARNESS / 'ckan_licences_etalab.json'}"
    report = ckan(portal, tmp_path, ckan_database, redis_url, urls(portal)[1], "--runs", "1",
                  "--profiles", "euro_dcat_ap_3", "--licenses-group-url", register)
    (source,) = report["runs"]
    items = {i["validated"]["extras"]["identifier"]: i["validated"] for i in source["jobs"][0]["items"]}
    assert {k: v["license_id"] for k, v in items.items()} == {i: expected_licence(i, "etalab-2.0") for i in IDS}
