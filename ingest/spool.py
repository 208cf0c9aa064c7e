"""On-disk spool for batches that could not be committed (database down).

One file per batch, written once and never modified (append-only directory): the records are
written to `<seq>.tmp`, fsync'd, renamed to `<seq>.spool`, and the directory is fsync'd, so a
batch is either wholly in the spool or not at all. Batches replay in sequence order; a file is
deleted only after its batch committed. A crash between that commit and the delete replays the
batch once more, which the idempotent writes absorb (readings and uplinks are unique; dead
letters and quarantine rows of that one batch could appear twice).

Records are pickles of our own `DecodedMessage` objects; the spool directory is private to the
service (never read untrusted files from it). Each file carries a magic, a length and a CRC32,
so a torn or foreign file is detected and set aside as `<seq>.corrupt`, never half-replayed.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"CASPOOL1"
HEADER = struct.Struct(">8sQI")  # magic, length, crc32


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for tmp in self.dir.glob("*.tmp"):  # a write interrupted by a crash: never acknowledged
            tmp.unlink()
        files = self.pending()
        self._next = int(files[-1].stem) + 1 if files else 1

    def pending(self) -> list[Path]:
        """Spooled batch files, oldest first."""
        return sorted(self.dir.glob("*.spool"))

    def __len__(self) -> int:
        return len(self.pending())

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.pending())

    def append(self, records: list[Any]) -> Path:
        """Write one batch durably; returns its file. Raises OSError (disk full, ...)."""
        body = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            seq = self._next
            self._next += 1
        final = self.dir / f"{seq:012d}.spool"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(HEADER.pack(MAGIC, len(body), zlib.crc32(body)))
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        self._fsync_dir()
        return final

    def read(self, path: Path) -> list[Any] | None:
        """The records of one spooled batch, or None when the file is damaged (set aside)."""
        records = load(path)
        if records is None:
            bad = path.with_suffix(".corrupt")
            os.replace(path, bad)
            log.warning("spool file %s is damaged; set aside as %s", path.name, bad.name)
        return records

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load(path: Path) -> list[Any] | None:
    """The records of one spool file, or None when it is torn or not a spool file (read only)."""
    data = path.read_bytes()
    if len(data) < HEADER.size:
        return None
    magic, length, crc = HEADER.unpack_from(data)
    body = data[HEADER.size:]
    if magic != MAGIC or len(body) != length or zlib.crc32(body) != crc:
        return None
    return pickle.loads(body)  # noqa: S301 - our own private spool files, checksummed


def spool_state(directory: Path) -> tuple[int, int, int, float | None]:
    """(batches waiting, their bytes, damaged files set aside, mtime of the oldest waiting batch)
    of a spool directory, read without opening a `Spool` (which creates the directory and
    removes interrupted writes): what the operator console shows, from any process."""
    d = Path(directory)
    if not d.is_dir():
        return 0, 0, 0, None
    waiting = [p.stat() for p in d.glob("*.spool")]
    return (len(waiting), sum(s.st_size for s in waiting), sum(1 for _ in d.glob("*.corrupt")),
            min((s.st_mtime for s in waiting), default=None))
