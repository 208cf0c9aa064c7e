"""The export folder as published: files per dataset, what the catalogue and the stable URLs
(`latest`, `today`) serve at a given time, recorded checksums."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from civicair.open_export.package import CHECKSUMS, CHECKSUMS_512
from civicair.open_export.periods import (
    ExportFile,
    Published,
    latest_day,
    parse_file_name,
    published,
    today_file,
)


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


def alias_file(root: Path, dataset_id: str, alias: str, ext: str, now: datetime) -> ExportFile | None:
    """The file a stable URL serves: `latest` (last finished day) or `today` (the day so far)."""
    files = dataset_files(root, dataset_id, ext)
    return latest_day(files, now) if alias == "latest" else today_file(files, now)


def published_files(root: Path, dataset_id: str, now: datetime) -> list[Published]:
    return published(dataset_files(root, dataset_id), now)


def _sums(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text("utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            sums[rel] = digest
    return sums


def recorded_checksums(root: Path, algorithm: str = "sha256") -> dict[str, str]:
    """SHA256SUMS (or SHA512SUMS) as {relative path: hex digest} (empty before the first export)."""
    return _sums(root / (CHECKSUMS_512 if algorithm == "sha512" else CHECKSUMS))
