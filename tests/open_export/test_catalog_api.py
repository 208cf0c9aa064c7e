"""The DCAT-AP catalogue and the export files served by a real `civicair api` process (the `portal`
fixture: recent days exported, every URL derived from its port), at the real time: both
serialisations parse, one dataset per configured dataset with its own licence, what the portals'
harvesters need (portal-safe keywords, typed media types, SHA-512 checksums that match, inclusive
end dates, locn:geometry), `latest` = the last finished day and `today` the partial one, each
finished day of the current month listed, every distribution URL answering 200, Hydra paging,
Link headers. The real harvesters run in tests/open_export/test_harvesters.py."""

from __future__ import annotations

import hashlib
import re
import warnings
from datetime import timedelta

import httpx
import pytest
from civicair.open_export.catalog import build_catalogue
from civicair.open_export.datasets import DEFAULT_DATASETS, select_datasets
from civicair.open_export.service import export_dir, run_export
from civicair.open_export.vocabulary import HYDRA, IANA, LOCN, SPDX
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF, RDFS, XSD

from tests.open_export.fixture import recent_days, seed_and_export_recent

pytestmark = pytest.mark.db
IDS = {d.id for d in DEFAULT_DATASETS}
ETALAB = URIRef("https://www.etalab.gouv.fr/licence-ouverte-open-licence")


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
def today(portal):
    return portal.today


@pytest.fixture
def api(portal):
    with httpx.Client(base_url=portal.base, timeout=30) as client:
        yield client


@pytest.fixture
def served(portal):
    """The settings the served instance runs with."""
    return portal.settings


def test_catalogue_parses_in_both_serialisations_and_lists_every_dataset(api, served, today) -> None:
    g_ld = fetch_graph(api, "/catalog.jsonld", "json-ld")
    g_ttl = fetch_graph(api, "/catalog.ttl", "turtle")
    # the same graph, but for the Hydra page links (each format pages to itself)
    assert isomorphic(without_paging(g_ld), without_paging(g_ttl))
    catalogue = next(g_ld.subjects(RDF.type, DCAT.Catalog))
    assert g_ld.value(catalogue, DCTERMS.license) == ETALAB == URIRef(served.licence_url)
    for prop in (DCTERMS.publisher, DCTERMS.issued, DCTERMS.modified, DCTERMS.spatial, DCAT.themeTaxonomy):
        assert g_ld.value(catalogue, prop) is not None, prop
    publisher = g_ld.value(catalogue, DCTERMS.publisher)
    assert g_ld.value(publisher, DCTERMS.type) == URIRef("http://purl.org/adms/publishertype/LocalAuthority")
    found = datasets_of(g_ld)
    assert set(found) == IDS
    for ds_id, ds in found.items():
        licence = URIRef(served.reference_licence_url if ds_id == "reference-stations" else served.licence_url)
        assert g_ld.value(ds, DCTERMS.license) == licence
        assert g_ld.value(licence, RDFS.label) and g_ld.value(licence, DCTERMS.type)
        assert g_ld.value(ds, DCAT.landingPage) == URIRef(f"{served.public_base_url}/datasets/{ds_id}")
        assert api.get(str(g_ld.value(ds, DCAT.landingPage))).status_code == 200  # the page exists (web/)
        for prop in (DCTERMS.title, DCTERMS.description):  # one literal per language, tagged
            assert sorted(t.language for t in g_ld.objects(ds, prop)) == ["en", "fr"]
        assert len(set(g_ld.objects(ds, DCTERMS.language))) == 2
        keywords = list(g_ld.objects(ds, DCAT.keyword))
        assert keywords and {k.language for k in keywords} == {"en", "fr"}
        assert all(re.fullmatch(r"[\w \-.]{3,96}", str(k)) for k in keywords), keywords  # CKAN's tag rule
        assert g_ld.value(ds, DCAT.theme) and g_ld.value(ds, DCTERMS.accrualPeriodicity)
        spatial = g_ld.value(ds, DCTERMS.spatial)
        assert (spatial, RDF.type, DCTERMS.Location) in g_ld
        assert all(g_ld.value(spatial, p) is not None for p in (LOCN.geometry, DCAT.bbox, DCAT.centroid))
        temporal = g_ld.value(ds, DCTERMS.temporal)
        # inclusive dates: the first seeded day to today (today's partial file is published)
        start, end = g_ld.value(temporal, DCAT.startDate), g_ld.value(temporal, DCAT.endDate)
        assert end == Literal(today, datatype=XSD.date), ds_id
        first = recent_days(today)[0]
        assert first.replace(day=1) <= start.toPython() <= first, ds_id  # a month file starts on the 1st
        assert g_ld.value(ds, DCTERMS.modified) is not None


def test_distributions_latest_today_and_the_days_of_this_month(api, served, today) -> None:
    g = fetch_graph(api, "/catalog.ttl", "turtle")
    finished_this_month = {d for d in recent_days(today) if d < today and d.month == today.month}
    urls: dict[str, str | None] = {}  # url → expected sha512 (file distributions)
    for ds_id, ds in datasets_of(g).items():
        dists = list(g.objects(ds, DCAT.distribution))
        names = {str(d).rsplit("#", 1)[1] for d in dists}
        for ext in ("csv", "parquet"):
            assert {f"latest.{ext}", f"today.{ext}"} <= names, (ds_id, names)
            days = {n for n in names if re.fullmatch(rf"{ds_id}_\d{{4}}-\d\d-\d\d\.{ext}", n)}
            assert days == {f"{ds_id}_{d.isoformat()}.{ext}" for d in finished_this_month}, ds_id
        assert "api" in names, f"{ds_id} has no API distribution"
        for d in dists:
            assert g.value(d, DCTERMS.license) == g.value(ds, DCTERMS.license)
            assert g.value(d, DCTERMS.description) is not None and g.value(d, URIRef("http://data.europa.eu/r5r/availability"))
            media = g.value(d, DCAT.mediaType)
            assert str(media).startswith(IANA) and g.value(media, RDFS.label) == Literal(str(media)[len(IANA):])
            assert (media, RDF.type, DCTERMS.MediaType) in g
            checksum = g.value(d, SPDX.checksum)
            digest = None
            if checksum is not None:
                assert g.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha512
                value = g.value(checksum, SPDX.checksumValue)
                assert value.datatype == XSD.hexBinary
                digest = str(value)
            if "#today." in str(d):
                assert checksum is None  # rewritten every 15 minutes
            elif str(d).rsplit("#", 1)[1] != "api":
                assert digest is not None and g.value(d, DCAT.byteSize) is not None
                conforms = g.value(d, DCTERMS.conformsTo)
                assert (conforms, RDF.type, DCTERMS.Standard) in g
            for url in {*g.objects(d, DCAT.downloadURL), *g.objects(d, DCAT.accessURL)}:
                assert str(url).startswith(served.public_base_url)
                urls[str(url)] = digest
    for url, digest in urls.items():
        r = api.get(url)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:200]}"
        if digest:
            assert hashlib.sha512(r.content).hexdigest() == digest, url


def test_latest_is_the_last_finished_day_and_today_the_partial_one(api, portal, today) -> None:
    root, settings = portal.export_dir, portal.settings
    for ext in ("csv", "parquet", "geojson"):
        yesterday = (root / "device-hourly" / f"device-hourly_{(today - timedelta(days=1)).isoformat()}.{ext}")
        partial = root / "device-hourly" / f"device-hourly_{today.isoformat()}.{ext}"
        assert api.get(f"/exports/device-hourly/latest.{ext}").content == yesterday.read_bytes()
        assert api.get(f"/exports/device-hourly/today.{ext}").content == partial.read_bytes()
    r = api.get("/exports/device-hourly/latest.csv")
    assert r.headers["content-type"].startswith("text/csv")
    link = r.headers["link"]
    assert f"<{settings.public_base_url}/datasets/device-hourly>" in link and "on the portal" not in link
    assert "/catalog.jsonld" in link and "datapackage.json" in link and f"<{settings.licence_url}>" in link
    stations = api.get("/exports/reference-stations/latest.csv")
    assert f'<{settings.reference_licence_url}>; rel="license"' in stations.headers["link"]
    assert api.get("/exports/device-hourly/latest.geojson").json()["type"] == "FeatureCollection"
    assert api.get("/exports/device-hourly/latest.parquet").content[:4] == b"PAR1"
    assert api.get("/exports/datapackage.json").json()["resources"]
    assert api.get("/exports/SHA256SUMS").status_code == api.get("/exports/SHA512SUMS").status_code == 200


def test_today_is_404_until_the_day_has_a_file(db, settings, live_api, today) -> None:
    from tests.open_export.fixture import seed

    seed(db.engine, today - timedelta(days=1))
    run_export(settings, db.engine, kind="day", day=today - timedelta(days=1))
    with httpx.Client(base_url=live_api) as client:
        assert client.get("/exports/zone-hourly/latest.csv").status_code == 200
        missing = client.get("/exports/zone-hourly/today.csv")
        assert missing.status_code == 404 and "for today" in missing.json()["detail"]
        g = fetch_graph(client, "/catalog.jsonld", "json-ld")
        names = {str(d).rsplit("#", 1)[1] for d in g.objects(None, DCAT.distribution)}
        assert "latest.csv" in names and "today.csv" not in names


@pytest.mark.parametrize("path", ["/exports/nope/latest.csv", "/exports/zone-hourly/latest.xml",
                                  "/exports/zone-hourly/today.exe",
                                  "/exports/zone-hourly/zone-hourly_1999-01-01.csv",
                                  "/exports/zone-hourly/..%2F..%2Fdatapackage.json",
                                  "/exports/zone-hourly/devices_2026-11-20.csv", "/exports/passwd",
                                  "/catalog.jsonld?page=9", "/catalog/datasets/nope"])
def test_unknown_paths_are_404_problems(api, path) -> None:
    r = api.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_public_api_responses_link_to_the_catalogue_and_dataset_pages(api, served) -> None:
    for path, dataset in (("/v1/devices", "devices"), ("/v1/stations", "reference-stations"),
                          ("/v1/zones", "zone-hourly")):
        r = api.get(path)
        assert r.status_code == 200
        link = r.headers["link"]
        assert "/catalog.jsonld" in link and link.count('rel="license"') == 1, link
        assert f"<{served.public_base_url}/datasets/{dataset}>" in link, link
    assert f"<{served.reference_licence_url}>" in api.get("/v1/stations").headers["link"]


def test_a_known_portal_slug_becomes_the_dataset_link(db, settings, serve, today) -> None:
    slug = "qualite-de-lair-horaire-calibree-par-zone"
    settings.portal_slugs = {"zone-hourly": slug}
    seed_and_export_recent(db.engine, settings, today)
    base = serve()
    portal = f"{settings.portal_base_url}/{slug}"
    with httpx.Client(base_url=base) as client:
        assert f"<{portal}>" in client.get("/exports/zone-hourly/latest.csv").headers["link"]
        assert f"<{portal}>" in client.get("/v1/zones").headers["link"]
        assert "on the portal" not in client.get("/exports/devices/latest.csv").headers["link"]
    package = (export_dir(settings) / "datapackage.json").read_text("utf-8")
    assert f'"homepage": "{portal}"' in package


def test_hydra_paging_walks_every_dataset_in_its_own_serialisation(api, served) -> None:
    for ext, fmt in (("jsonld", "json-ld"), ("ttl", "turtle")):
        seen: list[str] = []
        url: str | None = f"/catalog.{ext}?page_size=2"
        pages = 0
        while url:
            g = fetch_graph(api, url, fmt)
            page = datasets_of(g)
            assert len(page) <= 2
            seen += page
            view = next(g.subjects(RDF.type, HYDRA.PartialCollectionView))
            nxt = g.value(view, HYDRA.next)
            if nxt is not None:
                assert str(nxt).startswith(f"{served.public_base_url}/catalog.{ext}?")
            url = str(nxt) if nxt else None
            pages += 1
            assert g.value(next(g.subjects(RDF.type, DCAT.Catalog)), HYDRA.totalItems) == Literal(len(IDS))
        assert sorted(seen) == sorted(IDS) and pages == -(-len(IDS) // 2)


def test_dataset_uris_dereference_to_their_description(api, served) -> None:
    uri = f"{served.public_base_url}/catalog/datasets/zone-daily"
    for accept, fmt in (("application/ld+json", "json-ld"), ("text/turtle", "turtle")):
        r = api.get(uri, headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"].startswith(accept)
        g = fetch_graph(api, uri, fmt) if fmt == "json-ld" else Graph().parse(data=r.text, format=fmt)
        assert set(datasets_of(g)) == {"zone-daily"} and (URIRef(uri), RDF.type, DCAT.Dataset) in g


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


def test_the_served_data_package_validates_with_frictionless(portal) -> None:
    """`frictionless validate <api>/exports/datapackage.json` (README): every file over HTTP, its
    content checked (CSV with its bytes and hash), the month files and today's included."""
    import frictionless

    report = frictionless.validate(f"{portal.base}/exports/datapackage.json")
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])[:10]
    formats = {task.place.rsplit(".", 1)[-1] for task in report.tasks}
    assert formats == {"csv", "parquet", "geojson"} and len(report.tasks) > 20
    assert all(task.stats.get("rows") is not None for task in report.tasks)  # read as tables, row by row
