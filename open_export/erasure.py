"""Erasure in the published files (docs/privacy.md#erasure): every export file holding a device's
per-device rows (the datasets with a `device` column: its hourly series, the device list) is
rewritten without them, whatever its period (day or month) and name (an empty file when nothing
is left, as an export of a period whose rows all went writes one); then the package files
(datapackage.json, the checksums) are rebuilt, so the catalogue (built from the files and the
checksums on each request) describes the new files. Aggregates (zones, mobile cells) hold no
per-device row and stay.

Runs inside the erasure's transaction, holding the export folder's lock and then the export
lock exclusively (`service.export_lock`, in the order exports take them): a running export
finishes first, and the next one starts from a snapshot without the device.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from civicair.core.files import write_atomic
from civicair.core.settings import Settings
from civicair.open_export.datasets import DEFAULT_DATASETS, Dataset
from civicair.open_export.periods import FORMATS
from civicair.open_export.service import LOCK_KEY, available_datasets, export_dir, write_package
from civicair.open_export.state import folder_lock
from civicair.open_export.writer import BATCH_ROWS
from sqlalchemy.engine import Connection

DEVICE_COLUMN = "device"


def per_device_datasets(datasets: Sequence[Dataset] = DEFAULT_DATASETS) -> list[Dataset]:
    return [d for d in datasets if DEVICE_COLUMN in d.column_names]


def _without_csv(data: bytes, pseudonym: str) -> bytes | None:
    """The CSV without the device's rows (None: it had none)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if not rows or DEVICE_COLUMN not in rows[0]:
        return None
    i = rows[0].index(DEVICE_COLUMN)
    kept = [rows[0], *(r for r in rows[1:] if len(r) <= i or r[i] != pseudonym)]
    if len(kept) == len(rows):
        return None
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(kept)  # the writer of `CsvSink`: same bytes per row
    return buf.getvalue().encode("utf-8")


def _without_parquet(path: Path, pseudonym: str) -> tuple[bytes, int] | None:
    table = pq.read_table(path)
    if DEVICE_COLUMN not in table.column_names:
        return None
    keep = pc.fill_null(pc.not_equal(table[DEVICE_COLUMN], pa.scalar(pseudonym)), True)
    if pc.all(keep).as_py():
        return None
    left = table.filter(keep)
    buf = io.BytesIO()
    pq.write_table(left, buf, compression="zstd", write_statistics=True, row_group_size=BATCH_ROWS)
    return buf.getvalue(), left.num_rows


def _without_geojson(data: bytes, pseudonym: str) -> tuple[bytes, int] | None:
    doc = json.loads(data)
    features = doc.get("features") or []
    kept = [f for f in features if (f.get("properties") or {}).get(DEVICE_COLUMN) != pseudonym]
    if len(kept) == len(features):
        return None
    doc["features"] = kept  # keys keep their order: the bytes `GeoJsonSink` writes for these rows
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n", len(kept)


def _rewrite(path: Path, pseudonym: str) -> bool:
    """Whether the file held the device (and was rewritten without it)."""
    ext = path.suffix.lstrip(".")
    data: bytes | None
    if ext == "parquet":
        done = _without_parquet(path, pseudonym)
        data = done[0] if done else None
    else:
        raw = path.read_bytes()
        if pseudonym.encode() not in raw:
            return False
        if ext == "csv":
            data = _without_csv(raw, pseudonym)
        else:
            geo = _without_geojson(raw, pseudonym)
            data = geo[0] if geo else None
    if data is None:
        return False
    write_atomic(path, data)
    return True


def erase_device_files(conn: Connection, settings: Settings, pseudonym: str, *, root: Path | None = None) -> dict[str, int]:
    """Rewrite or remove every published file holding `pseudonym`'s rows; returns the counts.
    `conn`: the erasure's transaction (the export lock is held until it ends)."""
    root = root or export_dir(settings)
    counts = {"rewritten": 0}
    if not root.is_dir():
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        return counts
    with folder_lock(root):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        for d in per_device_datasets():
            folder = root / d.id
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or not path.is_file() or path.suffix.lstrip(".") not in FORMATS:
                    continue
                counts["rewritten"] += _rewrite(path, pseudonym)
        if counts["rewritten"]:
            def put(path: Path, data: bytes) -> None:
                write_atomic(path, data)

            write_package(settings, root, available_datasets(settings), put)
    return counts
