"""The export folder as published: files per dataset, the newest file, recorded checksums."""

from __future__ import annotations

from pathlib import Path

from civicair.open_export.periods import ExportFile, newest, parse_file_name
from civicair.open_export.writer import CHECKSUMS


def dataset_files(root: Path, dataset_id: str, ext: str | None = None) -> list[ExportFile]:
    folder = root / dataset_id
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        ef = parse_file_name(path.name)
        if ef is not None and ef.dataset == dataset_id and (ext is None or ef.ext == ext) and path.is_file():
            found.append(ef)
    return sorted(found, key=lambda f: (f.period.start, f.period.end, f.ext))


def latest_file(root: Path, dataset_id: str, ext: str) -> ExportFile | None:
    return newest(dataset_files(root, dataset_id, ext))


def recorded_checksums(root: Path) -> dict[str, str]:
    """SHA256SUMS as {relative path: hex digest} (empty when no export ran yet)."""
    path = root / CHECKSUMS
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text("utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            sums[rel] = digest
    return sums
