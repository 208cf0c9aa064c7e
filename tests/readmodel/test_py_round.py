"""`statements.py_round` rounds in PostgreSQL exactly as the published values are rounded in
Python (`round(x, 3)`, half to even on the binary value), ties and near-ties included, so a
SensorThings filter on `result` compares the numbers the public API shows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from civicair.readmodel.statements import py_round
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import ARRAY

pytestmark = pytest.mark.db

TIES = [12.3455, 12.3125, -12.3125, 2.675, 0.0005, 1.0005, -0.0025, 123456.0005, 0.1, 1e-7, -1e-7, 0.0, 7.0,
        1e6 + 0.0625, 2.5e-4, 0.00049999999999999996]


def _sql_round(db, values: list[float], digits: int) -> list[float]:
    sub = sa.select(sa.func.unnest(sa.literal(values, ARRAY(sa.Float))).label("v")).subquery()
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(py_round(sub.c.v, digits)))]


@pytest.mark.parametrize("digits", [1, 3])
def test_ties_and_near_ties_round_as_python_does(db, digits: int) -> None:
    assert _sql_round(db, TIES, digits) == [round(v, digits) for v in TIES]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-10**7, 10**7).map(lambda i: i / 2**10)
                | st.integers(0, 10**6).map(lambda i: i / 10**4), min_size=1, max_size=200))
def test_random_values_round_as_python_does(_session_db, values: list[float]) -> None:
    assert _sql_round(_session_db, values, 3) == [round(v, 3) for v in values]
    assert _sql_round(_session_db, [None, 1.5], 3) == [None, 1.5]  # type: ignore[list-item]
