"""Files written atomically: a temporary file in the same directory (hidden, named after the
writer's pid, `TMP_SUFFIX`, so a cleaner knows a dead writer's leftovers), fsync, `os.replace`;
and only when the bytes change, so re-running a writer changes nothing and no reader ever sees
a partial file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """Where `path` is written before it replaces the old one (`remove_stale_temporaries` knows
    the pattern: hidden, the writer's pid, `.tmp`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def write_atomic(path: Path, data: bytes, *, before_replace: Callable[[Path], None] | None = None,
                 mode: int | None = None) -> bool:
    """Write `data` to `path` through a temporary file and `os.replace`. Returns False (and touches
    nothing) when the file already holds exactly these bytes. `before_replace` is called with the
    temporary path once it is complete (tests inject faults there); any exception removes it.
    `mode`: the file's permissions (default: the umask's)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    tmp = temporary_path(path)
    try:
        tmp.write_bytes(data)
        if mode is not None:
            os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return commit_atomic(tmp, path, before_replace=before_replace, compare=False)


def commit_atomic(tmp: Path, path: Path, *, before_replace: Callable[[Path], None] | None = None,
                  compare: bool = True) -> bool:
    """Put the complete temporary file `tmp` in place of `path` (fsync, `os.replace`), or, when
    `path` already holds the same bytes, just remove `tmp`; True when `path` changed. Any
    exception removes `tmp`."""
    try:
        if compare and _same_bytes(tmp, path):
            tmp.unlink()
            return False
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _same_bytes(a: Path, b: Path) -> bool:
    if not b.is_file() or a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while chunk := fa.read(1 << 20):
            if chunk != fb.read(1 << 20):
                return False
    return True
