"""The index bands (readmodel/indices.py, docs/open-data.md#index-bands): boundaries inclusive,
monotonic, and the published tables."""

from __future__ import annotations

from civicair.readmodel import indices
from hypothesis import given
from hypothesis import strategies as st


def test_upper_bounds_are_inclusive_on_both_scales() -> None:
    for scale in indices.SCALES.values():
        for quantity, upper in scale.upper.items():
            for i, bound in enumerate(upper):
                assert indices.band(scale, quantity, bound) == i + 1
                assert indices.band(scale, quantity, bound + 0.001) == i + 2
            assert indices.band(scale, quantity, 0.0) == 1


def test_the_published_tables() -> None:
    assert indices.EAQI.upper["pm25"] == (5, 15, 50, 90, 140)
    assert indices.EAQI.upper["no2"] == (10, 25, 60, 100, 150)
    assert indices.ATMO.upper["pm10"] == (20, 40, 50, 100, 150)
    assert indices.ATMO.upper["o3"] == (50, 100, 130, 240, 380)
    assert indices.band(indices.EAQI, "pm25", 20.0) == 3 and indices.band(indices.ATMO, "pm25", 20.0) == 2
    assert indices.ATMO.name_fr.startswith("D'après les seuils de l'indice ATMO")


def test_no_value_or_an_unknown_quantity_is_band_zero() -> None:
    assert indices.band(indices.EAQI, "pm25", None) == 0
    assert indices.band(indices.EAQI, "pm25", float("nan")) == 0
    assert indices.band(indices.EAQI, "temperature", 12.0) == 0
    assert indices.band_info(indices.EAQI, 0) is indices.NO_DATA


@given(st.sampled_from(list(indices.QUANTITIES)), st.floats(0, 2000), st.floats(0, 2000))
def test_bands_never_decrease_with_the_value(quantity: str, a: float, b: float) -> None:
    for scale in indices.SCALES.values():
        lo, hi = sorted((a, b))
        assert 1 <= indices.band(scale, quantity, lo) <= indices.band(scale, quantity, hi) <= 6


def test_the_document_the_scripts_read_holds_every_band() -> None:
    doc = indices.scales_document()
    assert set(doc["scales"]) == {"eaqi", "atmo"} and doc["default"] == "eaqi"
    assert all(len(s["bands"]) == 6 and len(s["upper"]["pm25"]) == 5 for s in doc["scales"].values())
