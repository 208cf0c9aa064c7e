"""Export files: CSV, Parquet and GeoJSON encodings, streamed, written atomically and idempotently
(the folder's metadata is open_export.package).

Encodings are deterministic (same rows → same bytes), and `write_atomic` only replaces a file
when its bytes change, through a temporary file in the same directory and `os.replace`, so a
reader or a harvester never sees a partial file and re-running an export changes nothing.

Provenance lives outside the data files (CSV stays plain RFC 4180 CSV that any tool reads):
in `datapackage.json` (licence, sources, homepage = dataset page, catalogue link), in the Parquet
key/value metadata, and in the HTTP `Link` headers of the file URLs.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from civicair.core.files import TMP_SUFFIX, commit_atomic, temporary_path
from civicair.open_export.datasets import Column, Dataset

CHECKSUMS = "SHA256SUMS"
DATAPACKAGE = "datapackage.json"
DICTIONARY = "dictionary.csv"

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


SORT_RUN_ROWS = 200_000  # rows sorted in memory at most; beyond, sorted runs spill to disk
SPILL_CHUNK_ROWS = 1_000  # rows per pickle in a run file: what the merge holds of each run
MERGE_FAN_IN = 32  # runs merged at once; more runs are first merged into longer ones
BATCH_ROWS = 65_536  # rows per write batch, and per Parquet row group


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in row)


def sorted_rows(dataset: Dataset, rows: Iterable[Mapping[str, Any]], *, spill_dir: Path | None = None,
                run_rows: int | None = None) -> Iterator[tuple[Any, ...]]:
    """Rows restricted to the dataset's columns, typed, in a stable order (sorted), with memory
    bounded whatever the number of rows: an external merge sort. Runs of `run_rows` (default
    `SORT_RUN_ROWS`) are sorted in memory and pickled to unlinked temporary files (in
    `spill_dir`); at most `MERGE_FAN_IN` runs are merged at once, a `SPILL_CHUNK_ROWS` chunk of
    each in memory, and longer runs are merged first into one."""
    run_rows = run_rows or SORT_RUN_ROWS
    runs: list[IO[bytes]] = []
    current: list[tuple[Any, ...]] = []
    try:
        for r in rows:
            current.append(tuple(coerce(c, r.get(c.name)) for c in dataset.columns))
            if len(current) >= run_rows:
                current.sort(key=_sort_key)
                runs.append(_spill(current, spill_dir))
                current = []
                if len(runs) == MERGE_FAN_IN:
                    merged = _spill(heapq.merge(*(_unspill(f) for f in runs), key=_sort_key), spill_dir)
                    for f in runs:
                        f.close()
                    runs = [merged]
        current.sort(key=_sort_key)
        if runs:
            yield from heapq.merge(*(_unspill(f) for f in runs), current, key=_sort_key)
        else:
            yield from current
    finally:
        for f in runs:
            f.close()


def _spill(rows: Iterable[tuple[Any, ...]], directory: Path | None) -> IO[bytes]:
    f = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by sorted_rows
    for chunk in _batches(rows, SPILL_CHUNK_ROWS):
        pickle.dump(chunk, f, protocol=pickle.HIGHEST_PROTOCOL)
    f.seek(0)
    return f


def _unspill(f: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            chunk = pickle.load(f)  # noqa: S301 - our own file, written just before
        except EOFError:
            return
        yield from chunk


def normalise_rows(dataset: Dataset, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """`sorted_rows` as a list (small inputs)."""
    return list(sorted_rows(dataset, rows))


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


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


class CsvSink:
    """UTF-8 CSV without BOM, header = column names, LF line ends, times ISO 8601 UTC with Z."""

    def __init__(self, dataset: Dataset, out: BinaryIO) -> None:
        self.dataset = dataset
        self.text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self.writer = csv.writer(self.text, lineterminator="\n")
        self.writer.writerow(dataset.column_names)

    def write(self, batch: list[tuple[Any, ...]]) -> None:
        columns = self.dataset.columns
        self.writer.writerows([_csv_text(c, v) for c, v in zip(columns, row, strict=True)] for row in batch)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


def encode_csv(dataset: Dataset, rows: list[tuple[Any, ...]]) -> bytes:
    return _encode(CsvSink(dataset, buf := io.BytesIO()), rows, buf)


def arrow_schema(dataset: Dataset, provenance: Mapping[str, str]) -> pa.Schema:
    fields = [
        pa.field(c.name, _ARROW[c.type], metadata={
            "description": c.description_en, "description_fr": c.description_fr, **({"unit": c.unit} if c.unit else {}),
        })
        for c in dataset.columns
    ]
    return pa.schema(fields, metadata={k: v for k, v in sorted(provenance.items())})


class ParquetSink:
    """Typed, zstd-compressed Parquet, a row group per batch; provenance (licence, portal page,
    catalogue) in its metadata."""

    def __init__(self, dataset: Dataset, out: BinaryIO, provenance: Mapping[str, str]) -> None:
        self.schema = arrow_schema(dataset, provenance)
        self.writer = pq.ParquetWriter(out, self.schema, compression="zstd", write_statistics=True)
        self.empty = True

    def write(self, batch: list[tuple[Any, ...]]) -> None:
        columns = list(zip(*batch, strict=True))
        self.writer.write_table(pa.Table.from_arrays(
            [pa.array(list(col), type=f.type) for col, f in zip(columns, self.schema, strict=True)],
            schema=self.schema))
        self.empty = False

    def close(self) -> None:
        if self.empty:  # a file with the schema and no rows
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


def encode_parquet(dataset: Dataset, rows: list[tuple[Any, ...]], provenance: Mapping[str, str]) -> bytes:
    return _encode(ParquetSink(dataset, buf := io.BytesIO(), provenance), rows, buf)


def _json_value(column: Column, value: Any) -> Any:
    if value is not None and column.type == "datetime":
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class GeoJsonSink:
    """RFC 7946 FeatureCollection, one feature per row (properties = the columns); provenance
    (licence, portal page, catalogue) as foreign members of the collection. Written as it comes:
    the bytes of `json.dumps` of the whole document, compact, UTF-8."""

    def __init__(self, dataset: Dataset, out: BinaryIO,
                 geometry_of: Callable[[Mapping[str, Any]], dict[str, Any] | None],
                 provenance: Mapping[str, str]) -> None:
        self.dataset, self.out, self.geometry_of = dataset, out, geometry_of
        head = {"type": "FeatureCollection", **{k.removeprefix("civicair:"): v for k, v in sorted(provenance.items())}}
        out.write(_json(head)[:-1] + b',"features":[')
        self.first = True

    def write(self, batch: list[tuple[Any, ...]]) -> None:
        parts = []
        for row in batch:
            props = {c.name: _json_value(c, v) for c, v in zip(self.dataset.columns, row, strict=True)}
            parts.append(_json({"type": "Feature", "geometry": self.geometry_of(props), "properties": props}))
        if parts:
            self.out.write((b"" if self.first else b",") + b",".join(parts))
            self.first = False

    def close(self) -> None:
        self.out.write(b"]}\n")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")



class Sink(Protocol):
    def write(self, batch: list[tuple[Any, ...]]) -> None: ...
    def close(self) -> None: ...


def _encode(sink: Sink, rows: list[tuple[Any, ...]], buf: io.BytesIO) -> bytes:
    for batch in _batches(rows, BATCH_ROWS):
        sink.write(batch)
    sink.close()
    return buf.getvalue()


def write_files(rows: Iterable[tuple[Any, ...]], sinks: Mapping[Path, Callable[[BinaryIO], Sink]], *,
                before_replace: Callable[[Path], None] | None = None,
                keep_empty: bool = False) -> tuple[int, list[tuple[Path, bool]]]:
    """Stream sorted, typed `rows` once into several files (path → its sink's factory), through
    temporary files put in place with `commit_atomic` in the given order. Memory is bounded by a
    batch (`BATCH_ROWS`). Returns (rows, [(path, changed)]); with no rows nothing is written,
    unless `keep_empty` (files with a header and no row replace the old ones)."""
    temporaries = {path: temporary_path(path) for path in sinks}
    n = 0
    try:
        with ExitStack() as stack:
            opened = [factory(stack.enter_context(open(temporaries[path], "wb"))) for path, factory in sinks.items()]
            for batch in _batches(rows, BATCH_ROWS):
                for sink in opened:
                    sink.write(batch)
                n += len(batch)
            for sink in opened:
                sink.close()
        if n == 0 and not keep_empty:
            for tmp in temporaries.values():
                tmp.unlink(missing_ok=True)
            return 0, []
        done: list[tuple[Path, bool]] = []
        for path, tmp in temporaries.items():
            done.append((path, commit_atomic(tmp, path, before_replace=before_replace)))
        return n, done
    except BaseException:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
        raise


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
