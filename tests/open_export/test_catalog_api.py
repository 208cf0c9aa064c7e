"""The DCAT-AP catalogue and the export files over real HTTP (uvicorn): both serialisations parse,
one dataset per configured dataset, every distribution URL answers 200, Hydra paging, Link headers."""

from __future__ import annotations

import hashlib
import warnings
from datetime import timedelta

import httpx
import pytest
from civicair.open_export.catalog import HYDRA, SPDX, build_catalogue
from civicair.open_export.datasets import DEFAULT_DATASETS, select_datasets
from civicair.open_export.service import export_dir, run_export
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF

from tests.open_export.fixture import DAY, seed

pytestmark = pytest.mark.db
IDS = {d.id for d in DEFAULT_DATASETS}


def fetch_graph(client: httpx.Client, url: str, fmt: str) -> Graph:
    r = client.get(url)
    assert r.status_code == 200, r.text
    with warnings.catch_warnings():  # rdflib's own JSON-LD parser still uses ConjunctiveGraph
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        return Graph().parse(data=r.text, format=fmt)


def without_paging(g: Graph) -> Graph:
    views = set(g.objects(None, HYDRA.view))
    out = Graph()
    for s, p, o in g:
        if s not in views and o not in views:
            out.add((s, p, o))
    return out


def datasets_of(g: Graph) -> dict[str, URIRef]:
    return {str(g.value(ds, DCTERMS.identifier)): ds for ds in g.subjects(RDF.type, DCAT.Dataset)}


@pytest.fixture
def api(db, settings, live_api):
    seed(db.engine)
    settings.public_base_url = live_api  # the catalogue's URLs point at this running server
    for day in (DAY - timedelta(days=1), DAY):
        run_export(settings, db.engine, kind="day", day=day)
    with httpx.Client(base_url=live_api, timeout=30) as client:
        yield client


def test_catalogue_parses_in_both_serialisations_and_lists_every_dataset(api, settings) -> None:
    g_ld = fetch_graph(api, "/catalog.jsonld", "json-ld")
    g_ttl = fetch_graph(api, "/catalog.ttl", "turtle")
    # the same graph, but for the Hydra page links (each format pages to itself)
    assert isomorphic(without_paging(g_ld), without_paging(g_ttl))
    catalogue = next(g_ld.subjects(RDF.type, DCAT.Catalog))
    assert g_ld.value(catalogue, DCTERMS.license) == URIRef(settings.licence_url)
    assert g_ld.value(catalogue, DCTERMS.publisher) is not None
    found = datasets_of(g_ld)
    assert set(found) == IDS
    for ds_id, ds in found.items():
        assert g_ld.value(ds, DCTERMS.license) == URIRef(settings.licence_url)
        assert g_ld.value(ds, DCAT.landingPage) == URIRef(f"{settings.portal_base_url}/{ds_id}")
        titles = {t.language for t in g_ld.objects(ds, DCTERMS.title)}
        assert titles == {"en", "fr"}
        assert g_ld.value(ds, DCAT.theme) and g_ld.value(ds, DCTERMS.accrualPeriodicity)
        assert g_ld.value(g_ld.value(ds, DCTERMS.spatial), DCAT.bbox) is not None
        assert g_ld.value(g_ld.value(ds, DCAT.contactPoint), URIRef("http://www.w3.org/2006/vcard/ns#hasEmail"))
        temporal = g_ld.value(ds, DCTERMS.temporal)
        assert str(g_ld.value(temporal, DCAT.endDate)).startswith(str(DAY + timedelta(days=1)))
        assert g_ld.value(ds, DCTERMS.modified) is not None
        if ds_id == "device-hourly":  # the only dataset with data the day before
            assert str(g_ld.value(temporal, DCAT.startDate)).startswith(str(DAY - timedelta(days=1)))
        assert any(True for _ in g_ld.objects(ds, DCAT.keyword))


def test_every_distribution_url_resolves_on_the_running_api(api, settings) -> None:
    g = fetch_graph(api, "/catalog.jsonld", "json-ld")
    urls: dict[str, str | None] = {}  # url → expected sha256 (file distributions)
    for ds_id, ds in datasets_of(g).items():
        dists = list(g.objects(ds, DCAT.distribution))
        media = {str(g.value(d, DCAT.mediaType)) for d in dists}
        assert any(m.endswith("text/csv") for m in media) and any(m.endswith("parquet") for m in media), ds_id
        assert any(g.value(d, DCAT.accessService) is not None for d in dists), f"{ds_id} has no API distribution"
        for d in dists:
            assert g.value(d, DCTERMS.license) == URIRef(settings.licence_url)
            checksum = g.value(d, SPDX.checksum)
            digest = str(g.value(checksum, SPDX.checksumValue)) if checksum is not None else None
            for url in {*g.objects(d, DCAT.downloadURL), *g.objects(d, DCAT.accessURL)}:
                assert str(url).startswith(settings.public_base_url)
                urls[str(url)] = digest
    assert len(urls) >= 2 * len(IDS) + 4  # latest CSV + Parquet per dataset, and the API endpoints
    for url, digest in urls.items():
        r = api.get(url)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:200]}"
        if digest:
            assert hashlib.sha256(r.content).hexdigest() == digest, url


def test_latest_urls_serve_the_newest_file_with_provenance_links(api, db, settings) -> None:
    root = export_dir(settings)
    newest = (root / "device-hourly" / f"device-hourly_{DAY.isoformat()}.csv").read_bytes()
    older = root / "device-hourly" / f"device-hourly_{(DAY - timedelta(days=1)).isoformat()}.csv"
    assert older.is_file() and older.read_bytes() != newest
    r = api.get("/exports/device-hourly/latest.csv")
    assert r.status_code == 200 and r.content == newest
    assert r.headers["content-type"].startswith("text/csv")
    assert f"{settings.portal_base_url}/device-hourly" in r.headers["link"]
    assert "/catalog.jsonld" in r.headers["link"] and "datapackage.json" in r.headers["link"]
    geo = api.get("/exports/device-hourly/latest.geojson")
    assert geo.status_code == 200 and geo.headers["content-type"].startswith("application/geo+json")
    assert geo.json()["type"] == "FeatureCollection"
    parquet = api.get("/exports/device-hourly/latest.parquet")
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    assert api.get("/exports/datapackage.json").json()["resources"]
    assert api.get("/exports/SHA256SUMS").status_code == 200
    # a newer export moves `latest` without any other step
    run_export(settings, db.engine, kind="day", day=DAY + timedelta(days=1))
    after = api.get("/exports/device-hourly/latest.csv")
    assert after.content == (root / "device-hourly" / f"device-hourly_{(DAY + timedelta(days=1)).isoformat()}.csv").read_bytes()


@pytest.mark.parametrize("path", ["/exports/nope/latest.csv", "/exports/zone-hourly/latest.xml",
                                  "/exports/zone-hourly/zone-hourly_1999-01-01.csv",
                                  "/exports/zone-hourly/..%2F..%2Fdatapackage.json",
                                  "/exports/zone-hourly/devices_2026-11-20.csv", "/exports/passwd"])
def test_unknown_export_paths_are_404_problems(api, path) -> None:
    r = api.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_public_api_responses_link_to_the_catalogue_and_portal_page(api, settings) -> None:
    for path, dataset in (("/v1/devices", "devices"), ("/v1/stations", "reference-stations"),
                          ("/v1/zones", "zone-hourly")):
        r = api.get(path)
        assert r.status_code == 200
        link = r.headers["link"]
        assert "/catalog.jsonld" in link and 'rel="license"' in link, link
        assert f"<{settings.portal_base_url}/{dataset}>" in link, link


def test_hydra_paging_walks_every_dataset(api) -> None:
    seen: list[str] = []
    url: str | None = "/catalog.jsonld?page_size=2"
    pages = 0
    while url:
        g = fetch_graph(api, url, "json-ld")
        page = datasets_of(g)
        assert len(page) <= 2
        seen += page
        view = next(g.subjects(RDF.type, HYDRA.PartialCollectionView))
        nxt = g.value(view, HYDRA.next)
        url = str(nxt) if nxt else None
        pages += 1
        assert g.value(next(g.subjects(RDF.type, DCAT.Catalog)), HYDRA.totalItems) == Literal(len(IDS))
    assert sorted(seen) == sorted(IDS) and pages == -(-len(IDS) // 2)


def test_catalogue_follows_the_configured_dataset_list(settings, tmp_path) -> None:
    settings.export_datasets = ["devices", "reference-stations"]
    g = build_catalogue(settings, select_datasets(settings.export_datasets), tmp_path)
    assert set(datasets_of(g)) == {"devices", "reference-stations"}
    # nothing exported yet and no API routes given: no distribution announces a dead URL
    assert not list(g.subjects(RDF.type, DCAT.Distribution))


def test_files_answer_head_and_conditional_get(api) -> None:
    head = api.head("/exports/zone-hourly/latest.csv")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    first = api.get("/exports/zone-hourly/latest.csv")
    again = api.get("/exports/zone-hourly/latest.csv", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert api.head("/catalog.ttl").status_code == 200
