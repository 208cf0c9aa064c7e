"""Export files: CSV and Parquet encodings, atomic idempotent writes, datapackage.json, checksums.

Encodings are deterministic (same rows → same bytes), and `write_atomic` only replaces a file
when its bytes change, through a temporary file in the same directory and `os.replace`, so a
reader or a harvester never sees a partial file and re-running an export changes nothing.

Provenance lives outside the data files (CSV stays plain RFC 4180 CSV that any tool reads):
in `datapackage.json` (licence, sources, homepage = portal page, catalogue link), in the Parquet
key/value metadata, and in the HTTP `Link` headers of the file URLs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from open_export.datasets import Column, Dataset
from open_export.periods import FORMATS, parse_file_name

CHECKSUMS = "SHA256SUMS"
DATAPACKAGE = "datapackage.json"
DICTIONARY = "dictionary.csv"
TMP_SUFFIX = ".tmp"

_ARROW = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "datetime": pa.timestamp("s", tz="UTC"),
    "boolean": pa.bool_(),
}


def _to_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: export times must be timezone-aware")
        return value.astimezone(UTC).replace(microsecond=0)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise TypeError(f"not a datetime: {value!r}")


def coerce(column: Column, value: Any) -> Any:
    """A provider's value as the column's type (None stays None)."""
    if value is None:
        return None
    if column.type == "datetime":
        return _to_utc(value)
    if column.type == "integer":
        return int(value)
    if column.type == "number":
        return float(value)
    if column.type == "boolean":
        return bool(value)
    return str(value)


def normalise_rows(dataset: Dataset, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows restricted to the dataset's columns, typed, in a stable order (sorted)."""
    out = [tuple(coerce(c, r.get(c.name)) for c in dataset.columns) for r in rows]
    out.sort(key=lambda row: tuple((v is None, v if v is not None else 0) for v in row))
    return out


def _csv_text(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if column.type == "datetime":
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if column.type == "boolean":
        return "true" if value else "false"
    if column.type == "number":
        return repr(value)
    return str(value)


def encode_csv(dataset: Dataset, rows: list[tuple[Any, ...]]) -> bytes:
    """UTF-8 CSV without BOM, header = column names, LF line ends, times ISO 8601 UTC with Z."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(dataset.column_names)
    for row in rows:
        w.writerow([_csv_text(c, v) for c, v in zip(dataset.columns, row, strict=True)])
    return buf.getvalue().encode("utf-8")


def arrow_schema(dataset: Dataset, provenance: Mapping[str, str]) -> pa.Schema:
    fields = [
        pa.field(c.name, _ARROW[c.type], metadata={
            "description": c.description_en, "description_fr": c.description_fr, **({"unit": c.unit} if c.unit else {}),
        })
        for c in dataset.columns
    ]
    return pa.schema(fields, metadata={k: v for k, v in sorted(provenance.items())})


def encode_parquet(dataset: Dataset, rows: list[tuple[Any, ...]], provenance: Mapping[str, str]) -> bytes:
    """Typed, zstd-compressed Parquet; provenance (licence, portal page, catalogue) in its metadata."""
    schema = arrow_schema(dataset, provenance)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in dataset.columns]
    table = pa.Table.from_arrays([pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
                                 schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=True)
    return buf.getvalue()


def _json_value(column: Column, value: Any) -> Any:
    if value is not None and column.type == "datetime":
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def encode_geojson(dataset: Dataset, rows: list[tuple[Any, ...]],
                   geometry_of: Callable[[Mapping[str, Any]], dict[str, Any] | None],
                   provenance: Mapping[str, str]) -> bytes:
    """RFC 7946 FeatureCollection, one feature per row (properties = the columns); provenance
    (licence, portal page, catalogue) as foreign members of the collection."""
    features = []
    for row in rows:
        props = {c.name: _json_value(c, v) for c, v in zip(dataset.columns, row, strict=True)}
        features.append({"type": "Feature", "geometry": geometry_of(props), "properties": props})
    doc = {"type": "FeatureCollection",
           **{k.removeprefix("civicair:"): v for k, v in sorted(provenance.items())},
           "features": features}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes, *, before_replace: Callable[[Path], None] | None = None) -> bool:
    """Write `data` to `path` through a temporary file and `os.replace`. Returns False (and touches
    nothing) when the file already holds exactly these bytes. `before_replace` is called with the
    temporary path once it is complete (tests inject faults there); any exception removes it."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def remove_stale_temporaries(root: Path) -> int:
    """Delete temporary files left by a killed export (their process no longer runs)."""
    removed = 0
    for tmp in root.rglob(f".*{TMP_SUFFIX}"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
        except ValueError:
            pid = -1
        if pid > 0 and pid != os.getpid() and _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def field_schema(dataset: Dataset) -> dict[str, Any]:
    fields = []
    for c in dataset.columns:
        f: dict[str, Any] = {"name": c.name, "type": c.type, "description": c.description_en,
                             "description_fr": c.description_fr}
        if c.type == "datetime":
            f["format"] = "%Y-%m-%dT%H:%M:%SZ"
        if c.unit:
            f["unit"] = c.unit
        fields.append(f)
    return {"fields": fields, "missingValues": [""]}


def encode_dictionary(datasets: Iterable[Dataset]) -> bytes:
    """The column dictionary: one row per (dataset, column)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "column", "type", "unit", "description_en", "description_fr"])
    for d in datasets:
        for c in d.columns:
            w.writerow([d.id, c.name, c.type, c.unit or "", c.description_en, c.description_fr])
    return buf.getvalue().encode("utf-8")


DICTIONARY_SCHEMA = {"fields": [{"name": n, "type": "string"} for n in
                                ("dataset", "column", "type", "unit", "description_en", "description_fr")],
                     "missingValues": []}


HashCache = dict[str, list[Any]]  # file path → [size, mtime_ns, sha256 hex]


def file_digest(path: Path, cache: HashCache) -> tuple[int, str]:
    """(size, sha256) of a file, reusing `cache` while its size and mtime are unchanged (an
    atomic replace always changes the mtime), so a long history is not re-read on every run."""
    st = path.stat()
    key = str(path)
    hit = cache.get(key)
    if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return st.st_size, str(hit[2])
    digest = sha256(path.read_bytes())
    cache[key] = [st.st_size, st.st_mtime_ns, digest]
    return st.st_size, digest


def build_datapackage(root: Path, datasets: Iterable[Dataset], meta: Mapping[str, Any],
                      hashes: HashCache | None = None) -> tuple[bytes, bytes]:
    """(datapackage.json, SHA256SUMS) describing every export file under `root`, deterministic.
    `meta`: name, title, homepage, catalogue, licence {name, path, title}, sources [...],
    publisher, portal_base_url. `hashes`: a digest cache, updated in place."""
    hashes = {} if hashes is None else hashes
    resources: list[dict[str, Any]] = []
    sums: list[str] = []
    dictionary = root / DICTIONARY
    if dictionary.is_file():
        data = dictionary.read_bytes()
        resources.append({"name": "dictionary", "path": DICTIONARY, "format": "csv", "mediatype": "text/csv",
                          "encoding": "utf-8", "bytes": len(data), "hash": f"sha256:{sha256(data)}",
                          "description": "Column dictionary of every dataset", "schema": DICTIONARY_SCHEMA})
        sums.append(f"{sha256(data)}  {DICTIONARY}")
    portal = str(meta["portal_base_url"]).rstrip("/")
    for d in datasets:
        folder = root / d.id
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        for path in files:
            ef = parse_file_name(path.name)
            if ef is None or ef.dataset != d.id:
                continue
            rel = f"{d.id}/{path.name}"
            size, digest = file_digest(path, hashes)
            sums.append(f"{digest}  {rel}")
            res: dict[str, Any] = {
                "name": path.name.replace(".", "-").replace("_", "-").lower(),
                "path": rel,
                "title": f"{d.title_en} — {ef.period.label}",
                "description": d.description_en,
                "format": ef.ext,
                "mediatype": FORMATS[ef.ext],
                "bytes": size,
                "hash": f"sha256:{digest}",
                "homepage": f"{portal}/{d.id}",
                "temporal": {"start": ef.period.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "end": ef.period.end.strftime("%Y-%m-%dT%H:%M:%SZ")},
            }
            if ef.ext == "csv":
                res.update(encoding="utf-8", schema=field_schema(d))
            else:  # validated by hash and size; its typed schema is inside the file
                res.update(type="file", schema_ref=f"{d.id}/{path.stem}.csv")
            resources.append(res)
    package = {
        "profile": "data-package",
        "name": meta["name"],
        "title": meta["title"],
        "homepage": portal,
        "licenses": [meta["licence"]],
        "sources": list(meta["sources"]),
        "contributors": [{"title": meta["publisher"], "role": "publisher"}],
        "catalogue": meta["catalogue"],
        "resources": resources,
    }
    body = json.dumps(package, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"
    return body, ("\n".join(sums) + "\n").encode("utf-8") if sums else b""
