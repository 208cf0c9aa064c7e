"""DCAT-AP catalogue and export files at stable URLs, for portal harvesters (udata, CKAN,
Opendatasoft). Every file response links to its dataset's page, the catalogue and
datapackage.json (docs/open-data.md#portal-links)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from civicair.api.deps import SettingsDep
from civicair.core.errors import NotFound
from civicair.core.settings import Settings
from civicair.open_export import urls
from civicair.open_export.catalog import CONTEXT, CataloguePage, build_catalogue, page_count
from civicair.open_export.datasets import DEFAULT_DATASETS
from civicair.open_export.files import alias_file
from civicair.open_export.package import CHECKSUMS, CHECKSUMS_512, DATAPACKAGE, DICTIONARY
from civicair.open_export.periods import ALIASES, FORMATS, parse_file_name
from civicair.open_export.service import available_datasets, export_dir
from civicair.open_export.vocabulary import dataset_licence
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse

router = APIRouter(tags=["open data files and catalogue"])
ROOT_FILES = {DATAPACKAGE: "application/json", CHECKSUMS: "text/plain; charset=utf-8",
              CHECKSUMS_512: "text/plain; charset=utf-8", DICTIONARY: "text/csv; charset=utf-8"}
SERIALISATIONS = {"jsonld": ("json-ld", "application/ld+json"), "ttl": ("turtle", "text/turtle")}
BY_ID = {d.id: d for d in DEFAULT_DATASETS}


def page_links(settings: Settings, dataset_id: str) -> list[str]:
    """The dataset's pages: civicair's own, and the portal's when its slug is configured."""
    links = [f'<{urls.landing_page(settings, dataset_id)}>; rel="alternate"; type="text/html"; '
             'title="dataset page"']
    if (portal := urls.portal_page(settings, dataset_id)) is not None:
        links.append(f'<{portal}>; rel="alternate"; type="text/html"; title="dataset page on the portal"')
    return links


def _links(settings: Settings, dataset_id: str | None = None) -> str:
    licence_url = dataset_licence(settings, BY_ID[dataset_id]).url if dataset_id in BY_ID else settings.licence_url
    links = [f'<{urls.catalogue_url(settings)}>; rel="describedby"; type="application/ld+json"',
             f'<{licence_url}>; rel="license"']
    if dataset_id:
        links[:0] = page_links(settings, dataset_id)
        links.append(f'<{urls.export_root_url(settings, DATAPACKAGE)}>; rel="describedby"; '
                     'type="application/vnd.datapackage+json"')
    return ", ".join(links)


def dataset_of_path(path: str, query: bytes = b"") -> str | None:
    """The published dataset a public API path serves (for its page links)."""
    if path.startswith("/v1/zones"):
        return "zone-daily" if b"interval=day" in query else "zone-hourly"
    if path.startswith("/v1/devices"):
        return "device-hourly" if path.endswith("/series") else "devices"
    if path.startswith("/v1/mobile"):
        return "mobile-cells"
    if path.startswith("/v1/stations"):
        return "reference-stations"
    return None


class CatalogueLink:
    """Pure ASGI middleware: append the links to the catalogue and to the dataset's pages to the
    `Link` header of every successful public dataset response (/v1/...), keeping the links
    already there (licence, paging)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.catalogue = (f'<{urls.catalogue_url(settings)}>; rel="describedby"; type="application/ld+json"; '
                          'title="DCAT-AP catalogue"').encode("latin-1")
        self.pages = {d.id: ", ".join(page_links(settings, d.id)).encode("latin-1") for d in DEFAULT_DATASETS}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        dataset = dataset_of_path(scope["path"], scope.get("query_string", b""))
        mine = [self.catalogue] + ([self.pages[dataset]] if dataset else [])

        async def send_with_link(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"link"]
                existing = [v for k, v in message.get("headers", []) if k.lower() == b"link"]
                headers.append((b"link", b", ".join([*existing, *mine])))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_link)


def install_links(app: FastAPI, settings: Settings) -> None:
    """Link every public dataset response to the catalogue and its dataset's pages."""
    app.add_middleware(CatalogueLink, settings=settings)


def _api_paths(request: Request) -> set[str]:
    """GET paths the running app serves (from its OpenAPI document, built once and cached)."""
    paths = request.app.openapi().get("paths", {})
    return {path for path, ops in paths.items() if "get" in ops}


def _serialise(graph: Any, fmt: str) -> str:
    return str(graph.serialize(format=fmt, context=CONTEXT) if fmt == "json-ld" else graph.serialize(format=fmt))


def _catalogue(request: Request, settings: Settings, page: int, page_size: int, ext: str) -> Response:
    fmt, media = SERIALISATIONS[ext]
    datasets = available_datasets(settings)
    if page > page_count(len(datasets), page_size):
        raise NotFound(f"no catalogue page {page}: {page_count(len(datasets), page_size)} page(s) of {page_size}")
    graph = build_catalogue(
        settings, datasets, export_dir(settings), api_paths=_api_paths(request),
        page=CataloguePage(page, page_size), page_url=urls.catalogue_url(settings, ext),  # public, also behind a proxy
        now=datetime.now(UTC),
    )
    return Response(_serialise(graph, fmt), media_type=media, headers={"Link": _links(settings)})


@router.head("/catalog.jsonld", include_in_schema=False)
@router.get("/catalog.jsonld", summary="DCAT-AP catalogue (JSON-LD), Hydra-paged")
def catalogue_jsonld(request: Request, settings: SettingsDep, page: int = Query(1, ge=1),
                     page_size: int = Query(50, ge=1, le=500)) -> Response:
    return _catalogue(request, settings, page, page_size, "jsonld")


@router.head("/catalog.ttl", include_in_schema=False)
@router.get("/catalog.ttl", summary="DCAT-AP catalogue (Turtle), Hydra-paged")
def catalogue_turtle(request: Request, settings: SettingsDep, page: int = Query(1, ge=1),
                     page_size: int = Query(50, ge=1, le=500)) -> Response:
    return _catalogue(request, settings, page, page_size, "ttl")


@router.head("/catalog/datasets/{dataset}", include_in_schema=False)
@router.get("/catalog/datasets/{dataset}", summary="One dataset's DCAT-AP description (its URI dereferenced)")
def catalogue_dataset(dataset: str, request: Request, settings: SettingsDep) -> Response:
    """The catalogue restricted to this dataset: Turtle when the client asks for it (Accept), else
    JSON-LD."""
    chosen = [d for d in available_datasets(settings) if d.id == dataset]
    if not chosen:
        raise NotFound(f"no published dataset {dataset!r}")
    ext = "ttl" if "text/turtle" in request.headers.get("accept", "") else "jsonld"
    graph = build_catalogue(settings, chosen, export_dir(settings), api_paths=_api_paths(request),
                            page_url=urls.catalogue_url(settings, ext), now=datetime.now(UTC))
    fmt, media = SERIALISATIONS[ext]
    return Response(_serialise(graph, fmt), media_type=media, headers={"Link": _links(settings, dataset),
                                                                        "Vary": "Accept"})


@router.head("/exports/{name}", include_in_schema=False)
@router.get("/exports/{name}", summary="datapackage.json, SHA256SUMS, SHA512SUMS or dictionary.csv")
def export_root_file(name: str, request: Request, settings: SettingsDep) -> Response:
    if name not in ROOT_FILES:
        raise NotFound(f"no export file {name!r}; one of {sorted(ROOT_FILES)}")
    path = export_dir(settings) / name
    if not path.is_file():
        raise NotFound(f"{name} does not exist yet: no export has run")
    return _conditional(request, FileResponse(path, media_type=ROOT_FILES[name], headers={"Link": _links(settings)},
                                                   stat_result=path.stat()))


def _dataset_or_404(settings: Settings, dataset: str) -> None:
    if dataset not in {d.id for d in available_datasets(settings)}:
        raise NotFound(f"no published dataset {dataset!r}")


@router.head("/exports/{dataset}/{file}", include_in_schema=False)
@router.get("/exports/{dataset}/{file}",
            summary="One export file (CSV, Parquet or GeoJSON, one day or month), or a stable URL: "
                    "latest.<ext> (the last finished day), today.<ext> (the day so far)")
def export_file(dataset: str, file: str, request: Request, settings: SettingsDep) -> Response:
    _dataset_or_404(settings, dataset)
    stem, _, ext = file.rpartition(".")
    if stem in ALIASES:
        if ext not in FORMATS:
            raise NotFound(f"no format {ext!r}; one of {sorted(FORMATS)}")
        target = alias_file(export_dir(settings), dataset, stem, ext, datetime.now(UTC))
        if target is None:
            what = "finished day" if stem == "latest" else "file for today"
            raise NotFound(f"no {ext} {what} exported yet for {dataset!r}")
        return _serve(request, settings, export_dir(settings) / dataset / target.name, dataset, target.name)
    ef = parse_file_name(file)
    if ef is None or ef.dataset != dataset:
        raise NotFound(f"no export file {file!r} in {dataset!r}")
    path = export_dir(settings) / dataset / ef.name
    if not path.is_file():
        raise NotFound(f"no export file {file!r} in {dataset!r}")
    return _serve(request, settings, path, dataset, ef.name)


def _serve(request: Request, settings: Settings, path: Path, dataset: str, name: str) -> Response:
    ext = name.rsplit(".", 1)[1]
    media = FORMATS[ext] + ("; charset=utf-8" if ext == "csv" else "")
    return _conditional(request, FileResponse(path, media_type=media, filename=name, stat_result=path.stat(),
                                              headers={"Link": _links(settings, dataset)}))


def _conditional(request: Request, response: FileResponse) -> Response:
    """304 Not Modified when the harvester already holds this version (If-None-Match)."""
    etag = response.headers.get("etag")
    wanted = request.headers.get("if-none-match")
    if etag and wanted and etag.removeprefix("W/") in {t.strip().removeprefix("W/") for t in wanted.split(",")}:
        keep = {k: v for k, v in response.headers.items() if k in ("etag", "link", "last-modified")}
        return Response(status_code=304, headers=keep)
    return response
