"""The DCAT-AP 3 catalogue (an rdflib graph) that udata, CKAN (ckanext-dcat) and other harvesters
read; docs/open-data.md#dcat-ap-catalogue says what each statement is for.

dcat:Catalog → dcat:Dataset per published dataset → dcat:Distribution per file the dataset
publishes at this time (`latest` and `today` per format, each finished day of the current month,
each month; open_export.periods.published) and per public API endpoint (with its
dcat:DataService). Paged with Hydra (`hydra:PartialCollectionView`, `hydra:next`) over the
datasets. Built from the declarations, the settings and the export folder; no database access.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from civicair.core.settings import Settings
from civicair.open_export import urls
from civicair.open_export.datasets import Dataset
from civicair.open_export.files import published_files, recorded_checksums
from civicair.open_export.periods import Published
from civicair.open_export.state import read_state
from civicair.open_export.vocabulary import (
    ADMS,
    AVAILABLE,
    DCATAP,
    EU,
    FILE_TYPE,
    GSP,
    HYDRA,
    IANA,
    LANGUAGES,
    LICENCE_TYPE,
    LOCN,
    MEDIA_TYPE,
    PUBLISHER_TYPE,
    SPDX,
    STABLE,
    STANDARDS,
    THEMES,
    VCARD,
    Licence,
    Standard,
    dataset_licence,
    licence,
    portal_tag,
)
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

CONTEXT = {
    "dcat": str(DCAT), "dct": str(DCTERMS), "foaf": str(FOAF), "hydra": str(HYDRA), "vcard": str(VCARD),
    "spdx": str(SPDX), "adms": str(ADMS), "gsp": str(GSP), "xsd": str(XSD), "rdfs": str(RDFS),
    "locn": str(LOCN), "dcatap": str(DCATAP), "skos": str(SKOS),
}
ROLE_TITLE = {  # (en, fr) of each kind of published file
    "latest": ("last finished day", "dernier jour complet"),
    "today": ("today so far", "aujourd'hui (en cours)"),
}
ROLE_DESCRIPTION = {
    "latest": ("The last finished UTC day; this URL always serves the newest complete day.",
               "Le dernier jour UTC complet ; cette URL sert toujours le jour complet le plus récent."),
    "today": ("The current UTC day so far, rewritten every 15 minutes.",
              "Le jour UTC en cours, réécrit toutes les 15 minutes."),
    "day": ("One finished UTC day.", "Un jour UTC complet."),
    "month": ("One UTC month (the current month holds its finished days).",
              "Un mois UTC (le mois en cours contient ses jours complets)."),
}


@dataclass(frozen=True)
class CataloguePage:
    page: int = 1
    page_size: int = 50


def page_count(total: int, page_size: int) -> int:
    return max(1, -(-total // max(1, page_size)))


def _bind(g: Graph) -> None:
    for prefix, ns in CONTEXT.items():
        g.bind(prefix, Namespace(ns))


def _time(t: datetime) -> Literal:
    return Literal(t.astimezone(UTC).replace(microsecond=0), datatype=XSD.dateTime)


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
    except OSError:
        return None


class _Builder:
    """One catalogue page: shared nodes (publisher, licences, media types) described once."""

    def __init__(self, settings: Settings, root: Path, now: datetime) -> None:
        self.g, self.settings, self.root, self.now = Graph(), settings, root, now
        _bind(self.g)
        self.cat = URIRef(urls.catalogue_uri(settings))
        self.publisher = URIRef(f"{self.cat}#publisher")
        self.sha512 = recorded_checksums(root, "sha512")
        self.described: set[Node] = set()

    def add(self, s: Node, p: Node, o: Node) -> None:
        self.g.add((s, p, o))

    def texts(self, node: Node, prop: URIRef, en: str, fr: str) -> None:
        self.add(node, prop, Literal(en, lang="en"))
        self.add(node, prop, Literal(fr, lang="fr"))

    def once(self, node: Node) -> bool:
        if node in self.described:
            return False
        self.described.add(node)
        return True

    def licence(self, lic: Licence) -> URIRef:
        node = URIRef(lic.url)
        if self.once(node):
            self.add(node, RDF.type, DCTERMS.LicenseDocument)
            self.add(node, DCTERMS.title, Literal(lic.title))
            self.add(node, RDFS.label, Literal(lic.title))  # udata reads the label, CKAN the title
            for t in lic.types:
                self.add(node, DCTERMS.type, URIRef(LICENCE_TYPE + t))
        return node

    def media_type(self, ext: str) -> URIRef:
        node = URIRef(IANA + MEDIA_TYPE[ext])
        if self.once(node):
            self.add(node, RDF.type, DCTERMS.MediaType)
            self.add(node, RDFS.label, Literal(MEDIA_TYPE[ext]))
        return node

    def file_type(self, ext: str) -> URIRef:
        node = URIRef(f"{EU}file-type/{FILE_TYPE[ext]}")
        if self.once(node):
            self.add(node, RDF.type, DCTERMS.MediaTypeOrExtent)
        return node

    def standard(self, std: Standard) -> URIRef:
        node = URIRef(std.uri)
        if self.once(node):
            self.add(node, RDF.type, DCTERMS.Standard)
            self.add(node, DCTERMS.title, Literal(std.title))
        return node

    def document(self, url: str) -> URIRef:
        node = URIRef(url)
        if self.once(node):
            self.add(node, RDF.type, FOAF.Document)
        return node

    def location(self, key: str) -> BNode:
        w, s, e, n = self.settings.export_bbox
        node = BNode(f"{key}-spatial")
        polygon = Literal(f"POLYGON(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))", datatype=GSP.wktLiteral)
        self.add(node, RDF.type, DCTERMS.Location)
        self.add(node, LOCN.geometry, polygon)  # ckanext-spatial indexes this one
        self.add(node, DCAT.bbox, polygon)
        self.add(node, DCAT.centroid, Literal(f"POINT({(w + e) / 2:.5f} {(s + n) / 2:.5f})", datatype=GSP.wktLiteral))
        return node

    def contact(self, key: str) -> BNode:
        node = BNode(f"{key}-contact")
        if self.once(node):
            self.add(node, RDF.type, VCARD.Kind)
            self.add(node, RDF.type, VCARD.Organization)
            self.add(node, VCARD.fn, Literal(self.settings.contact_name))
            self.add(node, VCARD.hasEmail, URIRef(f"mailto:{self.settings.contact_email}"))
        return node

    def keywords(self, node: Node, d: Dataset) -> None:
        for lang, words in (("en", d.keywords_en), ("fr", d.keywords_fr)):
            for tag in dict.fromkeys(t for t in map(portal_tag, words) if t):
                self.add(node, DCAT.keyword, Literal(tag, lang=lang))

    def catalogue(self, total: int, number: int, last: int, size: int, page_url: str,
                  files_changed: datetime | None) -> None:
        s, cat = self.settings, self.cat
        self.add(self.publisher, RDF.type, FOAF.Agent)
        self.add(self.publisher, RDF.type, FOAF.Organization)
        self.add(self.publisher, FOAF.name, Literal(s.publisher_name))
        self.add(self.publisher, DCTERMS.type, URIRef(PUBLISHER_TYPE + s.publisher_type))
        self.add(cat, RDF.type, DCAT.Catalog)
        self.add(cat, RDF.type, HYDRA.Collection)
        self.texts(cat, DCTERMS.title, f"{s.publisher_name} — open air-quality data",
                   f"{s.publisher_name} — données ouvertes qualité de l'air")
        self.texts(cat, DCTERMS.description,
                   "Calibrated, anonymised air-quality series from citizen sensors, and the reference stations "
                   "used to calibrate them.",
                   "Séries de qualité de l'air calibrées et anonymisées issues de capteurs citoyens, et stations "
                   "de référence utilisées pour les calibrer.")
        self.add(cat, DCTERMS.publisher, self.publisher)
        self.add(cat, DCTERMS.license, self.licence(licence(s.licence_url, s.licence_name)))
        self.add(cat, FOAF.homepage, self.document(f"{urls.base_url(s)}/"))
        for lang in LANGUAGES.values():
            self.add(cat, DCTERMS.language, URIRef(lang))
        self.add(cat, DCTERMS.spatial, self.location("catalogue"))
        self.add(cat, DCAT.themeTaxonomy, URIRef(THEMES))
        self.add(URIRef(THEMES), RDF.type, SKOS.ConceptScheme)
        self.add(URIRef(THEMES), DCTERMS.title, Literal("Data theme", lang="en"))  # the EU vocabulary's name
        created = read_state(self.root).created_at
        if created is not None:
            self.add(cat, DCTERMS.issued, _time(created))
        if files_changed is not None:
            self.add(cat, DCTERMS.modified, _time(files_changed))
        self.add(cat, HYDRA.totalItems, Literal(total, datatype=XSD.integer))
        self._hydra_view(page_url, number, last, size)

    def _hydra_view(self, url: str, number: int, last: int, size: int) -> None:
        def at(n: int) -> URIRef:
            return URIRef(f"{url}?page={n}&page_size={size}")

        view = at(number)
        self.add(self.cat, HYDRA.view, view)
        self.add(view, RDF.type, HYDRA.PartialCollectionView)
        self.add(view, HYDRA.first, at(1))
        self.add(view, HYDRA.last, at(last))
        self.add(view, HYDRA.itemsPerPage, Literal(size, datatype=XSD.integer))
        if number < last:
            self.add(view, HYDRA.next, at(number + 1))
        if number > 1:
            self.add(view, HYDRA.previous, at(number - 1))

    def dataset(self, d: Dataset, api_paths: Collection[str]) -> datetime | None:
        """Describe one dataset; returns when its newest file changed."""
        s = self.settings
        ds = URIRef(urls.dataset_uri(s, d.id))
        lic = self.licence(dataset_licence(s, d))
        self.add(self.cat, DCAT.dataset, ds)
        self.add(self.cat, HYDRA.member, ds)
        self.add(ds, RDF.type, DCAT.Dataset)
        self.add(ds, DCTERMS.identifier, Literal(d.id))
        self.texts(ds, DCTERMS.title, d.title_en, d.title_fr)
        self.texts(ds, DCTERMS.description, d.description_en, d.description_fr)
        self.keywords(ds, d)
        self.add(ds, DCAT.theme, URIRef(f"{THEMES}/{d.theme}"))
        self.add(ds, DCTERMS.accrualPeriodicity, URIRef(f"{EU}frequency/{d.frequency}"))
        self.add(ds, DCAT.landingPage, self.document(urls.landing_page(s, d.id)))
        for lang in LANGUAGES.values():
            self.add(ds, DCTERMS.language, URIRef(lang))
        self.add(ds, DCTERMS.publisher, self.publisher)
        self.add(ds, DCTERMS.license, lic)
        self.add(ds, DCTERMS.spatial, self.location(d.id))
        contact = self.contact("civicair")
        self.add(ds, DCAT.contactPoint, contact)

        files = published_files(self.root, d.id, self.now)
        changed = [t for p in files if (t := _mtime(self.root / d.id / p.file.name)) is not None]
        if files:
            temporal = BNode(f"{d.id}-temporal")
            self.add(ds, DCTERMS.temporal, temporal)
            self.add(temporal, RDF.type, DCTERMS.PeriodOfTime)
            first = min(p.file.period.start for p in files)
            last = max(p.until for p in files) - timedelta(microseconds=1)  # inclusive: the last day held
            self.add(temporal, DCAT.startDate, Literal(first.date(), datatype=XSD.date))
            self.add(temporal, DCAT.endDate, Literal(last.date(), datatype=XSD.date))
        if changed:  # harvesters use it to skip unchanged datasets
            self.add(ds, DCTERMS.modified, _time(max(changed)))
        for p in files:
            self._file_distribution(d, ds, lic, p)
        if d.api_path and d.api_path in api_paths:
            self._api(d, ds, lic, contact)
        return max(changed) if changed else None

    def _file_distribution(self, d: Dataset, ds: URIRef, lic: URIRef, p: Published) -> None:
        url = URIRef(urls.file_url(self.settings, d.id, p.name))
        dist = URIRef(f"{ds}#{p.name}")
        ext = p.file.ext
        self.add(ds, DCAT.distribution, dist)
        self.add(dist, RDF.type, DCAT.Distribution)
        label_en, label_fr = ROLE_TITLE.get(p.role, (p.file.period.label, p.file.period.label))
        self.texts(dist, DCTERMS.title, f"{d.title_en} — {label_en} ({ext.upper()})",
                   f"{d.title_fr} — {label_fr} ({ext.upper()})")
        self.texts(dist, DCTERMS.description, *ROLE_DESCRIPTION[p.role])
        self.add(dist, DCAT.downloadURL, url)
        self.add(dist, DCAT.accessURL, url)
        self.add(dist, DCAT.mediaType, self.media_type(ext))
        self.add(dist, DCTERMS.format, self.file_type(ext))
        self.add(dist, DCTERMS.license, lic)
        self.add(dist, DCTERMS.conformsTo, self.standard(STANDARDS[ext]))
        self.add(dist, DCATAP.availability, URIRef(AVAILABLE if p.role == "today" else STABLE))
        path = self.root / d.id / p.file.name
        if (changed := _mtime(path)) is not None:
            self.add(dist, DCTERMS.modified, _time(changed))
            self.add(dist, DCAT.byteSize, Literal(path.stat().st_size, datatype=XSD.nonNegativeInteger))
        # today's file changes every run: a checksum would be stale within minutes
        digest = self.sha512.get(f"{d.id}/{p.file.name}") if p.role != "today" else None
        if digest:
            # SHA-512 typed xsd:hexBinary, as DCAT-AP 3 requires: CKAN stores it; udata, which maps
            # md5/sha1/sha256 only, skips it (README "Checksums in the catalogue")
            checksum = BNode(f"{d.id}-{p.name}-checksum")
            self.add(dist, SPDX.checksum, checksum)
            self.add(checksum, RDF.type, SPDX.Checksum)
            self.add(checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha512)
            self.add(checksum, SPDX.checksumValue, Literal(digest, datatype=XSD.hexBinary))

    def _api(self, d: Dataset, ds: URIRef, lic: URIRef, contact: BNode) -> None:
        s = self.settings
        api = URIRef(f"{urls.base_url(s)}{d.api_path}")
        dist, service = URIRef(f"{ds}#api"), URIRef(f"{ds}#service")
        self.add(ds, DCAT.distribution, dist)
        self.add(dist, RDF.type, DCAT.Distribution)
        self.texts(dist, DCTERMS.title, f"{d.title_en} — API", f"{d.title_fr} — API")
        self.texts(dist, DCTERMS.description, "The same data from the public API (JSON, CSV, GeoJSON), by query.",
                   "Les mêmes données par l'API publique (JSON, CSV, GeoJSON), à la demande.")
        self.add(dist, DCAT.accessURL, api)
        self.add(dist, DCAT.mediaType, self.media_type("json"))
        self.add(dist, DCTERMS.format, self.file_type("json"))
        self.add(dist, DCTERMS.license, lic)
        self.add(dist, DCATAP.availability, URIRef(STABLE))
        self.add(dist, DCAT.accessService, service)
        self.add(service, RDF.type, DCAT.DataService)
        self.texts(service, DCTERMS.title, f"{s.publisher_name} open data API — {d.title_en}",
                   f"API de données ouvertes {s.publisher_name} — {d.title_fr}")
        self.add(service, DCAT.endpointURL, api)
        self.add(service, DCAT.endpointDescription, URIRef(f"{urls.base_url(s)}/openapi.json"))
        self.add(service, DCTERMS.conformsTo, self.standard(STANDARDS["api"]))
        self.add(service, DCTERMS.license, lic)
        self.add(service, DCTERMS.publisher, self.publisher)
        self.add(service, DCAT.contactPoint, contact)
        self.add(service, DCAT.theme, URIRef(f"{THEMES}/{d.theme}"))
        self.keywords(service, d)
        self.add(service, DCAT.servesDataset, ds)


def build_catalogue(
    settings: Settings,
    datasets: Sequence[Dataset],
    export_root: Path,
    *,
    api_paths: Collection[str] = (),
    page: CataloguePage = CataloguePage(),  # noqa: B008 - frozen
    page_url: str | None = None,
    now: datetime | None = None,
) -> Graph:
    """The catalogue graph for one page of datasets (a page past the last gives the last).
    `api_paths`: the API routes that exist, so an API distribution is only announced when its URL
    answers. `now`: the time that decides which files are `latest`, `today` and finished days."""
    now = now or datetime.now(UTC)
    b = _Builder(settings, export_root, now)
    size = max(1, page.page_size)
    last = page_count(len(datasets), size)
    number = min(max(1, page.page), last)
    changed = [t for d in datasets[(number - 1) * size: number * size] if (t := b.dataset(d, api_paths))]
    # the catalogue changed when any dataset's file did (of every page, so each page says the same)
    everything = [t for d in datasets for p in published_files(export_root, d.id, now)
                  if (t := _mtime(export_root / d.id / p.file.name)) is not None] or changed
    b.catalogue(len(datasets), number, last, size, page_url or urls.catalogue_url(settings),
                max(everything) if everything else None)
    return b.g
