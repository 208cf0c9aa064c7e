"""The spool's file format: durable, ordered, damage detected (no database needed)."""

from __future__ import annotations

from pathlib import Path

from civicair.ingest.spool import Spool


def test_spool_keeps_order_across_instances_and_sets_damaged_files_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.append([1, 2])
    spool.append(["three"])
    (tmp_path / "000000000099.tmp").write_bytes(b"half written")  # a crash during a write
    again = Spool(tmp_path)  # a process restart
    assert [again.read(p) for p in again.pending()] == [[1, 2], ["three"]]
    assert not list(tmp_path.glob("*.tmp"))
    assert again.append([4]).name == "000000000003.spool"
    first.write_bytes(first.read_bytes()[:-3])  # torn file
    assert again.read(first) is None
    assert (tmp_path / "000000000001.corrupt").exists()
    assert [p.name for p in again.pending()] == ["000000000002.spool", "000000000003.spool"]
    again.remove(again.pending()[0])
    assert len(again) == 1 and again.size_bytes() > 0
