"""The stored zone-series format (`zone_series`, docs/storage.md#materialised-zone-series): rows
rendered once, grouped in chunks and compressed by civicair. Pure.

Stored rows come in chunks: a day of hourly rows, an ISO week (Monday first) of daily rows,
joined in one `docs` value (~12 KB), so a year page reads ~42 rows instead of 1000. The chunk is
an LZ4 block (pyarrow's codec): ~12 KB of JSON is ~2 KB, so a year page moves ~90 KB instead of
~0.5 MB out of the database, and decompressing here costs less than PostgreSQL's pglz did
(BENCHMARKS.md, "API").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from civicair.readmodel.params import STEP, Interval, floor_period

RENDER_VERSION = 4  # bump when the rendered rows or the stored format change: stored rows are rebuilt
CHUNK_PERIODS = {Interval.HOUR: 24, Interval.DAY: 7}

_LZ4 = pa.Codec("lz4_raw")


def pack_docs(docs: bytes) -> tuple[bytes, int]:
    """(compressed, raw size) of a chunk's comma-joined rows, as `zone_series` stores them."""
    return _LZ4.compress(docs, asbytes=True), len(docs)


def unpack_docs(data: bytes, raw_size: int | None) -> bytes:
    if raw_size is None:  # written before compression (never served: its version is older)
        return bytes(data)
    return _LZ4.decompress(data, decompressed_size=raw_size, asbytes=True) if raw_size else b""


def chunk_start(t: datetime, interval: Interval) -> datetime:
    """The start of the stored chunk holding period t (a UTC day, or the ISO week's Monday)."""
    day = floor_period(t, Interval.DAY)
    return day if interval == Interval.HOUR else day - timedelta(days=day.weekday())


def stored_rows(chunks: list[tuple[Any, ...]], interval: Interval, a: datetime,
                b: datetime) -> tuple[list[bytes], int, int]:
    """The stored rows of whole periods [a, b) from their chunks (chunk, n, n_suppressed, docs,
    raw_size, and for the edge chunks idx, ends, suppressed): (fragments of comma-joined rows,
    rows, suppressed zone-hours). Chunks inside the span are taken whole, the edge ones sliced by
    their offsets."""
    step, size = STEP[interval], CHUNK_PERIODS[interval]
    fragments: list[bytes] = []
    count = suppressed = 0
    for chunk, n, n_suppressed, packed, raw_size, idx, ends, hours in chunks:
        if idx is None:  # inside the span
            if n:
                fragments.append(unpack_docs(packed, raw_size))
            count += n
            suppressed += n_suppressed
            continue
        docs = unpack_docs(packed, raw_size)
        first = max(0, (a - chunk) // step)
        last = min(size, (b - chunk) // step)
        suppressed += sum(hours[first:last])
        keep = [i for i, position in enumerate(idx) if first <= position < last]
        if keep:
            start = ends[keep[0] - 1] + 1 if keep[0] else 0
            fragments.append(docs[start:ends[keep[-1]]])
            count += len(keep)
    return fragments, count, suppressed
