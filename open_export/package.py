"""The export folder's metadata: `datapackage.json` (a frictionless Data Package describing every
file so that frictionless validates its content: CSV and Parquet as typed tables, GeoJSON as a
table of features with valid geometries and their properties' JSON Schema), the column dictionary,
and the checksum files `SHA256SUMS` and `SHA512SUMS` (the catalogue's `spdx:checksum` values).
docs/open-data.md#datapackage-and-checksums
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from civicair.open_export.datasets import Column, Dataset
from civicair.open_export.periods import FORMATS, parse_file_name

CHECKSUMS = "SHA256SUMS"
CHECKSUMS_512 = "SHA512SUMS"
DATAPACKAGE = "datapackage.json"
DICTIONARY = "dictionary.csv"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


def field_schema(dataset: Dataset) -> dict[str, Any]:
    """The frictionless Table Schema of the dataset's rows (CSV and Parquet alike)."""
    fields = []
    for c in dataset.columns:
        f: dict[str, Any] = {"name": c.name, "type": c.type, "description": c.description_en,
                             "description_fr": c.description_fr}
        if c.type == "datetime":
            f["format"] = TIME_FORMAT
        if c.unit:
            f["unit"] = c.unit
        fields.append(f)
    return {"fields": fields, "missingValues": [""]}


_JSON_TYPE = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def _property_schema(c: Column) -> dict[str, Any]:
    if c.type == "datetime":
        return {"anyOf": [{"type": "string", "pattern": _TIME_PATTERN}, {"type": "null"}]}
    return {"type": [_JSON_TYPE[c.type], "null"]}


def feature_schema(dataset: Dataset) -> dict[str, Any]:
    """A GeoJSON file read as a table of its features (`type`, `geometry`, `properties`): every
    feature a Feature, its geometry valid GeoJSON, its properties an object; their JSON Schema
    (one member per column, typed) alongside."""
    properties = {"type": "object", "additionalProperties": False,
                  "required": list(dataset.column_names),
                  "properties": {c.name: _property_schema(c) for c in dataset.columns}}
    return {"fields": [
        {"name": "type", "type": "string", "constraints": {"required": True, "enum": ["Feature"]}},
        {"name": "geometry", "type": "geojson",
         "description": "The row's public geometry (H3 cell, zone, station or cell centre); null when unknown"},
        # frictionless 5 checks that `properties` is an object; it does not implement the Table
        # Schema `jsonSchema` constraint, so the columns' JSON Schema rides along as a field
        # property (`jsonSchema`) for any JSON Schema validator (tests/open_export apply it)
        {"name": "properties", "type": "object", "description": "The row: one member per column",
         "constraints": {"required": True}, "jsonSchema": properties},
    ]}


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


HashCache = dict[str, list[Any]]  # file path → [size, mtime_ns, sha256 hex, sha512 hex]


def file_digest(path: Path, cache: HashCache) -> tuple[int, str, str]:
    """(size, sha256, sha512) of a file, reusing `cache` while its size and mtime are unchanged (an
    atomic replace always changes the mtime), so a long history is not re-read on every run."""
    st = path.stat()
    key = str(path)
    hit = cache.get(key)
    if hit and len(hit) == 4 and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return st.st_size, str(hit[2]), str(hit[3])
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    with open(path, "rb") as f:  # streamed: export files can be large
        while chunk := f.read(1 << 20):
            h256.update(chunk)
            h512.update(chunk)
    cache[key] = [st.st_size, st.st_mtime_ns, h256.hexdigest(), h512.hexdigest()]
    return st.st_size, h256.hexdigest(), h512.hexdigest()


def _resource(d: Dataset, ext: str) -> dict[str, Any]:
    if ext == "csv":
        return {"type": "table", "format": "csv", "encoding": "utf-8", "schema": field_schema(d)}
    if ext == "parquet":
        # frictionless reads Parquet through pandas, which shows a null of an integer or number
        # column as NaN (and of a time as NaT): those are this file's missing values
        return {"type": "table", "format": "parquet", "schema": {**field_schema(d), "missingValues": ["", "nan", "NaT"]}}
    # a table (not frictionless' default "map" resource for GeoJSON): one row per feature
    return {"type": "table", "format": "json", "encoding": "utf-8",
            "dialect": {"json": {"property": "features", "keyed": True}}, "schema": feature_schema(d)}


def build_datapackage(root: Path, datasets: Iterable[Dataset], meta: Mapping[str, Any],
                      hashes: HashCache | None = None,
                      homepages: Mapping[str, str] | None = None) -> tuple[bytes, bytes, bytes]:
    """(datapackage.json, SHA256SUMS, SHA512SUMS) describing every export file under `root`,
    deterministic. `meta`: name, title, homepage, catalogue, licences, sources, publisher.
    `homepages`: dataset id → its page. `hashes`: a digest cache, updated in place."""
    hashes = {} if hashes is None else hashes
    homepages = homepages or {}
    resources: list[dict[str, Any]] = []
    sums: list[str] = []
    sums512: list[str] = []
    dictionary = root / DICTIONARY
    if dictionary.is_file():
        data = dictionary.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        resources.append({"name": "dictionary", "path": DICTIONARY, "format": "csv", "mediatype": "text/csv",
                          "encoding": "utf-8", "bytes": len(data), "hash": f"sha256:{digest}",
                          "description": "Column dictionary of every dataset", "schema": DICTIONARY_SCHEMA})
        sums.append(f"{digest}  {DICTIONARY}")
        sums512.append(f"{hashlib.sha512(data).hexdigest()}  {DICTIONARY}")
    for d in datasets:
        folder = root / d.id
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        for path in files:
            ef = parse_file_name(path.name)
            if ef is None or ef.dataset != d.id:
                continue
            rel = f"{d.id}/{path.name}"
            size, digest, digest512 = file_digest(path, hashes)
            sums.append(f"{digest}  {rel}")
            sums512.append(f"{digest512}  {rel}")
            res: dict[str, Any] = {
                "name": path.name.replace(".", "-").replace("_", "-").lower(),
                "path": rel,
                "title": f"{d.title_en} — {ef.period.label}",
                "description": d.description_en,
                "mediatype": FORMATS[ef.ext],
                "bytes": size,
                "hash": f"sha256:{digest}",
                "temporal": {"start": ef.period.start.strftime(TIME_FORMAT), "end": ef.period.end.strftime(TIME_FORMAT)},
                **_resource(d, ef.ext),
            }
            if ef.ext != "csv":
                # frictionless reads Parquet through pyarrow and JSON through ijson, not through its
                # counting byte stream, so it cannot count or hash those bytes and would report
                # every such file as damaged: their integrity is SHA256SUMS / SHA512SUMS (and the
                # catalogue's checksums), their content is what it validates
                del res["bytes"], res["hash"]
            if d.id in homepages:
                res["homepage"] = homepages[d.id]
            resources.append(res)
    package = {
        "profile": "data-package",
        "name": meta["name"],
        "title": meta["title"],
        "homepage": meta["homepage"],
        "licenses": list(meta["licences"]),
        "sources": list(meta["sources"]),
        "contributors": [{"title": meta["publisher"], "role": "publisher"}],
        "catalogue": meta["catalogue"],
        "resources": resources,
    }
    body = json.dumps(package, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"

    def lines(rows: list[str]) -> bytes:
        return ("\n".join(rows) + "\n").encode("utf-8") if rows else b""

    return body, lines(sums), lines(sums512)
