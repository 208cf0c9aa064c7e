"""Export runs: rows from the providers → CSV, Parquet and GeoJSON per dataset and period →
datapackage.json, dictionary, SHA256SUMS and SHA512SUMS, all written atomically and only when their
bytes change, one process at a time per export folder (open_export.state.folder_lock)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from civicair.core.files import write_atomic
from civicair.core.settings import Settings
from civicair.open_export import urls
from civicair.open_export.datasets import DEFAULT_DATASETS, Dataset, select_datasets
from civicair.open_export.geometry import geometry_resolver
from civicair.open_export.package import (
    CHECKSUMS,
    CHECKSUMS_512,
    DATAPACKAGE,
    DICTIONARY,
    build_datapackage,
    encode_dictionary,
)
from civicair.open_export.periods import Period, PeriodKind, period_for
from civicair.open_export.providers import Provider, default_providers
from civicair.open_export.state import FolderState, folder_lock, read_state, write_state
from civicair.open_export.vocabulary import dataset_licence
from civicair.open_export.writer import (
    CsvSink,
    GeoJsonSink,
    ParquetSink,
    Sink,
    remove_stale_temporaries,
    sorted_rows,
    write_files,
)
from civicair.readmodel.zone_series import zone_geometry
from sqlalchemy.engine import Connection, Engine

ProgressHook = Callable[[str], None]
HASH_CACHE = ".hashes.json"  # private digest cache of the export folder
LOCK_KEY = 0x63697663  # advisory lock between export runs (shared) and erasures (exclusive): "civc"


@contextmanager
def export_lock(engine: Engine) -> Iterator[None]:
    """Held (shared, by a session of its own) for an export run, so an erasure, which takes it
    exclusively in its own transaction, never has a run write files from a snapshot that still
    held the erased device."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.select(sa.func.pg_advisory_lock_shared(LOCK_KEY)))
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.pg_advisory_unlock_shared(LOCK_KEY)))


def export_dir(settings: Settings) -> Path:
    return settings.export_dir or settings.data_dir / "exports"


def attribution(settings: Settings, dataset: Dataset) -> str:
    if dataset.licence == "reference":
        return "the reference-station network named in each row (network column)"
    return settings.attribution


def provenance(settings: Settings, dataset: Dataset) -> dict[str, str]:
    """What every file says about itself (Parquet metadata, GeoJSON members)."""
    lic = dataset_licence(settings, dataset)
    meta = {
        "civicair:dataset": dataset.id,
        "civicair:title": dataset.title_en,
        "civicair:licence": lic.title,
        "civicair:licence_url": lic.url,
        "civicair:attribution": attribution(settings, dataset),
        "civicair:landing_page": urls.landing_page(settings, dataset.id),
        "civicair:catalogue_url": urls.catalogue_url(settings),
        "civicair:source": urls.base_url(settings) + (dataset.api_path or ""),
    }
    if (portal := urls.portal_page(settings, dataset.id)) is not None:
        meta["civicair:portal_url"] = portal
    return meta


def _frictionless_licence(url: str, title: str) -> dict[str, str]:
    name = "etalab-2.0" if "etalab" in url else "ODbL-1.0" if "odbl" in url.lower() else title
    return {"name": name, "path": url, "title": title}


def package_meta(settings: Settings) -> dict[str, object]:
    licences = [_frictionless_licence(settings.licence_url, settings.licence_name)]
    if settings.reference_licence_url != settings.licence_url:
        licences.append(_frictionless_licence(settings.reference_licence_url, settings.reference_licence_name))
    return {
        "name": "civicair-open-data",
        "title": f"{settings.publisher_name} — citizen air-quality open data",
        "homepage": urls.base_url(settings),
        "catalogue": urls.catalogue_url(settings),
        "licences": licences,
        "sources": [{"title": f"{settings.publisher_name} API", "path": urls.base_url(settings)},
                    {"title": "Reference stations (E2 / EEA e-reporting)", "path": "https://www.lcsqa.org/"}],
        "publisher": settings.publisher_name,
    }


@dataclass
class ExportReport:
    out: Path
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # dataset id → reason


def available_datasets(settings: Settings, providers: Mapping[str, Provider] | None = None,
                       datasets: Sequence[Dataset] = DEFAULT_DATASETS) -> tuple[Dataset, ...]:
    """Configured datasets that have a provider in this build."""
    providers = default_providers() if providers is None else providers
    return tuple(d for d in select_datasets(settings.export_datasets, datasets) if d.id in providers)


class _ZoneGeometries(dict[str, Any]):
    """Zone id → its public geometry, loaded on first use (`readmodel.zone_series.zone_geometry`)."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def __missing__(self, zone_id: str) -> Any:
        geometry = self[zone_id] = zone_geometry(self.conn, zone_id) if zone_id else None
        return geometry


def default_day(kind: PeriodKind, today: date) -> date:
    """Yesterday for daily files; a day of the previous month for monthly files."""
    return today - timedelta(days=1) if kind == "day" else today.replace(day=1) - timedelta(days=1)


def run_export(
    settings: Settings,
    engine: Engine,
    *,
    dataset_ids: Sequence[str] = (),
    kind: PeriodKind = "day",
    day: date | None = None,
    until: datetime | None = None,
    out: Path | None = None,
    providers: Mapping[str, Provider] | None = None,
    datasets: Sequence[Dataset] = DEFAULT_DATASETS,
    before_replace: Callable[[Path], None] | None = None,
    on_step: ProgressHook | None = None,
    locked: bool = False,
) -> ExportReport:
    """Export one day or month (rows before `until` only: the current month holds its finished
    days). Holds the folder's lock unless the caller does (`locked`)."""
    root = out or export_dir(settings)
    if locked:
        return _run_export(settings, engine, dataset_ids, kind, day, until, root, providers, datasets,
                           before_replace, on_step)
    with folder_lock(root):
        return _run_export(settings, engine, dataset_ids, kind, day, until, root, providers, datasets,
                           before_replace, on_step)


def _run_export(settings: Settings, engine: Engine, dataset_ids: Sequence[str], kind: PeriodKind,
                day: date | None, until: datetime | None, root: Path, providers: Mapping[str, Provider] | None,
                datasets: Sequence[Dataset], before_replace: Callable[[Path], None] | None,
                on_step: ProgressHook | None) -> ExportReport:
    providers = default_providers() if providers is None else providers
    configured = select_datasets(settings.export_datasets, datasets)
    chosen = select_datasets(dataset_ids, configured) if dataset_ids else configured
    period: Period = period_for(kind, day or default_day(kind, datetime.now(UTC).date()))
    end = min(period.end, until) if until is not None else period.end
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    report = ExportReport(out=root)
    # the API's range limit guards interactive queries; an export always spans one day or month
    query_settings = settings.model_copy(update={"max_range_days": max(settings.max_range_days, 31)})

    def put(path: Path, data: bytes) -> None:
        changed = write_atomic(path, data, before_replace=before_replace)
        (report.written if changed else report.unchanged).append(path)

    # one consistent snapshot for every dataset of the run, taken once no erasure is rewriting
    # files (an erasure waits for a running export: `export_lock`)
    with export_lock(engine), \
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        for d in chosen if end > period.start else ():
            if on_step:
                on_step(f"{d.id} {period.label}")
            provider = providers.get(d.id)
            if provider is None:
                report.skipped[d.id] = "no privacy-reviewed query available in this build"
                continue
            # streamed: sorted with bounded memory (runs spill next to the files), written in
            # batches to the CSV, Parquet and GeoJSON files at once
            rows = sorted_rows(d, provider(conn, query_settings, period.start, end), spill_dir=root)
            meta = provenance(settings, d)
            sinks: dict[Path, Callable[[BinaryIO], Sink]] = {
                root / d.id / period.file_name(d.id, "csv"): lambda f, d=d: CsvSink(d, f),  # type: ignore[misc]
                root / d.id / period.file_name(d.id, "parquet"): lambda f, d=d, m=meta: ParquetSink(d, f, m),  # type: ignore[misc]
            }
            if d.geometry:
                geometry_of = geometry_resolver(d.geometry, _ZoneGeometries(conn) if d.geometry == "zone_id" else None)
                sinks[root / d.id / period.file_name(d.id, "geojson")] = (
                    lambda f, d=d, g=geometry_of, m=meta: GeoJsonSink(d, f, g, m))  # type: ignore[misc]
            # a period whose rows all went (erased, withheld) gets empty files, not the old ones
            existed = any(path.exists() for path in sinks)
            report.rows[d.id], done = write_files(rows, sinks, before_replace=before_replace, keep_empty=existed)
            if not report.rows[d.id]:
                report.skipped[d.id] = f"no data for {period.label}"
            for path, changed in done:
                (report.written if changed else report.unchanged).append(path)
    if on_step:
        on_step("datapackage.json")
    write_package(settings, root, [d for d in configured if d.id in providers], put)
    state = read_state(root)
    if state.created is None:
        write_state(root, FolderState(created=datetime.now(UTC).replace(microsecond=0).isoformat(),
                                      final_through=state.final_through))
    return report


def write_package(settings: Settings, root: Path, published: Sequence[Dataset],
                  put: Callable[[Path, bytes], None]) -> None:
    """The dictionary, datapackage.json and SHA256SUMS describing the files under `root` now."""
    put(root / DICTIONARY, encode_dictionary(published))
    cache_path = root / HASH_CACHE
    try:
        hashes = json.loads(cache_path.read_text("utf-8")) if cache_path.is_file() else {}
    except (OSError, ValueError):
        hashes = {}
    homepages = {d.id: urls.dataset_page(settings, d.id) for d in published}
    package, sums, sums512 = build_datapackage(root, published, package_meta(settings), hashes, homepages)
    put(root / DATAPACKAGE, package)
    put(root / CHECKSUMS, sums)
    put(root / CHECKSUMS_512, sums512)
    live = {k: v for k, v in sorted(hashes.items()) if Path(k).is_file()}
    write_atomic(cache_path, json.dumps(live, separators=(",", ":")).encode())  # private, not published
