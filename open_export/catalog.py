"""The DCAT-AP 2 catalogue (rdflib graph) that udata, CKAN (ckanext-dcat) and other harvesters read.

dcat:Catalog → dcat:Dataset per published dataset → dcat:Distribution per file format (the
stable `latest` URL, plus each monthly file) and per public API endpoint. Paged with Hydra
(`hydra:PartialCollectionView`, `hydra:next`) over the datasets. Built from declarations and the
export folder; no database access.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from civicair.core.settings import Settings
from civicair.open_export.datasets import Dataset
from civicair.open_export.files import dataset_files, latest_file, recorded_checksums
from civicair.open_export.periods import FORMATS, ExportFile
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
EU = "http://publications.europa.eu/resource/authority/"
FILE_TYPE = {"csv": "CSV", "parquet": "PARQUET", "geojson": "GEOJSON"}
IANA = "http://www.iana.org/assignments/media-types/"

CONTEXT = {
    "dcat": str(DCAT), "dct": str(DCTERMS), "foaf": str(FOAF), "hydra": str(HYDRA), "vcard": str(VCARD),
    "spdx": str(SPDX), "adms": str(ADMS), "gsp": str(GSP), "xsd": str(XSD),
}


@dataclass(frozen=True)
class CataloguePage:
    page: int = 1
    page_size: int = 50


def _bind(g: Graph) -> None:
    for prefix, ns in CONTEXT.items():
        g.bind(prefix, Namespace(ns))


def base_url(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/")


def catalogue_uri(settings: Settings) -> URIRef:
    return URIRef(f"{base_url(settings)}/catalog")


def dataset_uri(settings: Settings, dataset_id: str) -> URIRef:
    return URIRef(f"{base_url(settings)}/catalog/datasets/{dataset_id}")


def file_url(settings: Settings, dataset_id: str, name: str) -> str:
    return f"{base_url(settings)}/exports/{dataset_id}/{name}"


def build_catalogue(
    settings: Settings,
    datasets: Sequence[Dataset],
    export_root: Path,
    *,
    api_paths: Collection[str] = (),
    page: CataloguePage = CataloguePage(),  # noqa: B008 - frozen
    page_url: str | None = None,
) -> Graph:
    """The catalogue graph for one page of datasets. `api_paths`: the API routes that exist, so an
    API distribution is only announced when its URL answers."""
    g = Graph()
    _bind(g)
    cat = catalogue_uri(settings)
    licence = URIRef(settings.licence_url)
    publisher = URIRef(f"{cat}#publisher")
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, FOAF.name, Literal(settings.publisher_name)))
    g.add((cat, RDF.type, DCAT.Catalog))
    g.add((cat, RDF.type, HYDRA.Collection))
    g.add((cat, DCTERMS.title, Literal(f"{settings.publisher_name} — open air-quality data", lang="en")))
    g.add((cat, DCTERMS.title, Literal(f"{settings.publisher_name} — données ouvertes qualité de l'air", lang="fr")))
    g.add((cat, DCTERMS.description, Literal(
        "Calibrated, anonymised air-quality series from citizen sensors, and the reference stations used "
        "to calibrate them.", lang="en")))
    g.add((cat, DCTERMS.description, Literal(
        "Séries de qualité de l'air calibrées et anonymisées issues de capteurs citoyens, et stations de "
        "référence utilisées pour les calibrer.", lang="fr")))
    g.add((cat, DCTERMS.publisher, publisher))
    g.add((cat, DCTERMS.license, licence))
    g.add((cat, FOAF.homepage, URIRef(settings.portal_base_url)))
    for lang in ("FRA", "ENG"):
        g.add((cat, DCTERMS.language, URIRef(f"{EU}language/{lang}")))

    total = len(datasets)
    size = max(1, page.page_size)
    last = max(1, -(-total // size))
    number = min(max(1, page.page), last)
    g.add((cat, HYDRA.totalItems, Literal(total, datatype=XSD.integer)))
    _hydra_view(g, cat, page_url or f"{base_url(settings)}/catalog.jsonld", number, last, size)

    checksums = recorded_checksums(export_root)
    for d in datasets[(number - 1) * size : number * size]:
        ds = dataset_uri(settings, d.id)
        g.add((cat, DCAT.dataset, ds))
        g.add((cat, HYDRA.member, ds))
        _dataset(g, settings, d, ds, publisher, licence, export_root, checksums, api_paths)
    return g


def _hydra_view(g: Graph, cat: URIRef, url: str, number: int, last: int, size: int) -> None:
    def at(n: int) -> URIRef:
        return URIRef(f"{url}?page={n}&page_size={size}")

    view = at(number)
    g.add((cat, HYDRA.view, view))
    g.add((view, RDF.type, HYDRA.PartialCollectionView))
    g.add((view, HYDRA.first, at(1)))
    g.add((view, HYDRA.last, at(last)))
    g.add((view, HYDRA.itemsPerPage, Literal(size, datatype=XSD.integer)))
    if number < last:
        g.add((view, HYDRA.next, at(number + 1)))
    if number > 1:
        g.add((view, HYDRA.previous, at(number - 1)))


def _dataset(g: Graph, settings: Settings, d: Dataset, ds: URIRef, publisher: URIRef, licence: URIRef,
             root: Path, checksums: dict[str, str], api_paths: Collection[str]) -> None:
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.identifier, Literal(d.id)))
    for lang, title, desc, kws in (("en", d.title_en, d.description_en, d.keywords_en),
                                   ("fr", d.title_fr, d.description_fr, d.keywords_fr)):
        g.add((ds, DCTERMS.title, Literal(title, lang=lang)))
        g.add((ds, DCTERMS.description, Literal(desc, lang=lang)))
        for kw in kws:
            g.add((ds, DCAT.keyword, Literal(kw, lang=lang)))
    g.add((ds, DCAT.theme, URIRef(f"{EU}data-theme/{d.theme}")))
    g.add((ds, DCTERMS.accrualPeriodicity, URIRef(f"{EU}frequency/{d.frequency}")))
    g.add((ds, DCAT.landingPage, URIRef(f"{settings.portal_base_url.rstrip('/')}/{d.id}")))
    g.add((ds, DCTERMS.publisher, publisher))
    g.add((ds, DCTERMS.license, licence))

    w, s, e, n = settings.export_bbox
    spatial = BNode(f"{d.id}-spatial")
    g.add((ds, DCTERMS.spatial, spatial))
    g.add((spatial, RDF.type, DCTERMS.Location))
    wkt = f"POLYGON(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))"
    g.add((spatial, DCAT.bbox, Literal(wkt, datatype=GSP.wktLiteral)))

    contact = BNode(f"{d.id}-contact")
    g.add((ds, DCAT.contactPoint, contact))
    g.add((contact, RDF.type, VCARD.Organization))
    g.add((contact, VCARD.fn, Literal(settings.contact_name)))
    g.add((contact, VCARD.hasEmail, URIRef(f"mailto:{settings.contact_email}")))

    files = dataset_files(root, d.id)
    if files:
        temporal = BNode(f"{d.id}-temporal")
        g.add((ds, DCTERMS.temporal, temporal))
        g.add((temporal, RDF.type, DCTERMS.PeriodOfTime))
        g.add((temporal, DCAT.startDate, Literal(min(f.period.start for f in files), datatype=XSD.dateTime)))
        g.add((temporal, DCAT.endDate, Literal(max(f.period.end for f in files), datatype=XSD.dateTime)))
        # when a file of the dataset last changed: harvesters use it to skip unchanged datasets
        changed = max((root / d.id / f.name).stat().st_mtime for f in files)
        g.add((ds, DCTERMS.modified, Literal(datetime.fromtimestamp(int(changed), UTC), datatype=XSD.dateTime)))

    for ext in FORMATS:
        newest = latest_file(root, d.id, ext)
        if newest is not None:
            _file_distribution(g, settings, d, ds, licence, newest, f"latest.{ext}",
                               checksums.get(f"{d.id}/{newest.name}"), root)
    for f in files:
        if f.period.kind == "month":
            _file_distribution(g, settings, d, ds, licence, f, f.name, checksums.get(f"{d.id}/{f.name}"), root)

    if d.api_path and d.api_path in api_paths:
        api = URIRef(f"{base_url(settings)}{d.api_path}")
        dist = URIRef(f"{ds}#api")
        g.add((ds, DCAT.distribution, dist))
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCTERMS.title, Literal(f"{d.title_en} — API", lang="en")))
        g.add((dist, DCTERMS.title, Literal(f"{d.title_fr} — API", lang="fr")))
        g.add((dist, DCAT.accessURL, api))
        g.add((dist, DCAT.mediaType, URIRef(f"{IANA}application/json")))
        g.add((dist, DCTERMS.format, URIRef(f"{EU}file-type/JSON")))
        g.add((dist, DCTERMS.license, licence))
        service = URIRef(f"{ds}#service")
        g.add((dist, DCAT.accessService, service))
        g.add((service, RDF.type, DCAT.DataService))
        g.add((service, DCAT.endpointURL, api))
        g.add((service, DCAT.endpointDescription, URIRef(f"{base_url(settings)}/openapi.json")))
        g.add((service, DCTERMS.title, Literal(f"{settings.publisher_name} open data API")))
        g.add((service, DCTERMS.license, licence))


def _file_distribution(g: Graph, settings: Settings, d: Dataset, ds: URIRef, licence: URIRef,
                       f: ExportFile, url_name: str, digest: str | None, root: Path) -> None:
    url = URIRef(file_url(settings, d.id, url_name))
    dist = URIRef(f"{ds}#{url_name}")
    g.add((ds, DCAT.distribution, dist))
    g.add((dist, RDF.type, DCAT.Distribution))
    label = "latest" if url_name.startswith("latest.") else f.period.label
    g.add((dist, DCTERMS.title, Literal(f"{d.title_en} — {label} ({f.ext.upper()})", lang="en")))
    g.add((dist, DCTERMS.title, Literal(f"{d.title_fr} — {label} ({f.ext.upper()})", lang="fr")))
    g.add((dist, DCAT.downloadURL, url))
    g.add((dist, DCAT.accessURL, url))
    g.add((dist, DCAT.mediaType, URIRef(IANA + FORMATS[f.ext])))
    g.add((dist, DCTERMS.format, URIRef(f"{EU}file-type/{FILE_TYPE[f.ext]}")))
    g.add((dist, DCTERMS.license, licence))
    g.add((dist, DCTERMS.conformsTo, URIRef(f"{base_url(settings)}/exports/datapackage.json")))
    path = root / d.id / f.name
    if path.is_file():
        g.add((dist, DCAT.byteSize, Literal(path.stat().st_size, datatype=XSD.nonNegativeInteger)))
    if digest:
        checksum = BNode(f"{d.id}-{url_name}-checksum")
        g.add((dist, SPDX.checksum, checksum))
        g.add((checksum, RDF.type, SPDX.Checksum))
        g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        g.add((checksum, SPDX.checksumValue, Literal(digest, datatype=XSD.hexBinary)))
