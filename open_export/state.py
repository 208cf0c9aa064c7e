"""What an export folder knows about itself, kept in the folder (docs/open-data.md#freshness): a
lock that serialises the processes writing it (`civicair up`, `civicair export`, several
schedulers on shared storage), and `.export-state.json`: when the folder was first written and
through which day its files are final."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from civicair.core.files import write_atomic

STATE = ".export-state.json"
LOCK = ".export.lock"


@dataclass(frozen=True, slots=True)
class FolderState:
    created: str | None = None  # ISO time of the folder's first export (the catalogue's dct:issued)
    final_through: str | None = None  # ISO date: every day before it has had its final export

    @property
    def final_before(self) -> date | None:
        return date.fromisoformat(self.final_through) if self.final_through else None

    @property
    def created_at(self) -> datetime | None:
        return datetime.fromisoformat(self.created) if self.created else None


def read_state(root: Path) -> FolderState:
    try:
        raw = json.loads((root / STATE).read_text("utf-8"))
        return FolderState(created=raw.get("created"), final_through=raw.get("final_through"))
    except (OSError, ValueError, AttributeError):
        return FolderState()


def write_state(root: Path, state: FolderState) -> None:
    write_atomic(root / STATE, json.dumps(asdict(state), sort_keys=True).encode())


@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """Exclusive lock of the export folder (flock; waits for the process holding it)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
