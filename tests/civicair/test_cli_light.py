"""Light commands stay light: the help of the root CLI and of every command group imports none
of the heavy libraries (the API app, matplotlib, numpy, SQLAlchemy, ...). The seconds it takes
are a benchmark figure (`civicair bench cli`, BENCHMARKS.md), not a test."""

from __future__ import annotations

import pytest
from civicair.bench.startup import HEAVY, LIGHT, heavy_imports


@pytest.mark.parametrize("args", LIGHT, ids=lambda a: " ".join(a))
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    assert heavy_imports(args) == []


def test_the_probe_sees_a_heavy_import() -> None:
    # a command that really runs imports what it needs, and the probe sees it
    assert {"sqlalchemy", "pyarrow"} <= set(heavy_imports(["export", "--period", "week"]))
    assert set(HEAVY) >= {"fastapi", "matplotlib"}
