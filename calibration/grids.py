"""The input of the one calibration computation: one quantity's hourly grids of many devices
(docs/calibration.md#the-calibration-run). Pure: numpy arrays in a frozen dataclass.

Row i of every grid is device i, column j is hour ``hour0 + j``; NaN marks a missing hour (no
data, or an hour that failed the coverage rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
Ints = NDArray[np.int64]
Int8s = NDArray[np.int8]


def empty_grid(devices: int, hours: int) -> Floats:
    return np.full((devices, hours), np.nan)


@dataclass(frozen=True)
class CalibrationInput:
    """One quantity, D devices × H hours.

    `ref` is the co-located station (NaN for devices without one), `cross_ref` the station a
    device is cross-checked against (its co-located one, else the nearest background station
    within reach; NaN where none), `neighbours` the same-type devices around each device (D × D).
    `sensor_type` names the sensor of each device that measures this quantity ("" when unknown);
    `epa_eligible` marks devices the US-EPA correction was derived for (Plantower, PM2.5)."""

    quantity: str
    raw: Floats
    ref: Floats
    rh: Floats
    cross_ref: Floats
    neighbours: Bools
    sensor_type: tuple[str, ...]
    epa_eligible: Bools
    clock_counts: Floats | None = None
    devices: tuple[str, ...] = field(default_factory=tuple)  # labels, for reports only

    @property
    def shape(self) -> tuple[int, int]:
        d, h = self.raw.shape
        return int(d), int(h)

    def __post_init__(self) -> None:
        d, h = self.shape
        for name in ("ref", "rh", "cross_ref"):
            grid = getattr(self, name)
            if grid.shape != (d, h):
                raise ValueError(f"{name} has shape {grid.shape}, expected {(d, h)}")
        if self.neighbours.shape != (d, d):
            raise ValueError(f"neighbours has shape {self.neighbours.shape}, expected {(d, d)}")
        if len(self.sensor_type) != d or self.epa_eligible.shape != (d,):
            raise ValueError("sensor_type and epa_eligible need one entry per device")


def covered_means(n: Floats, mean: Floats, min_coverage: float) -> Floats:
    """Hourly means where the hour holds ≥ `min_coverage` of the device's usual readings per hour
    (its 90th percentile of readings per hour over the window, i.e. its sampling rate)."""
    counts = np.where(n > 0, n, np.nan)
    with np.errstate(all="ignore"):
        srt = np.sort(np.where(np.isfinite(counts), counts, np.inf), axis=1)
        k = np.isfinite(counts).sum(axis=1)
        pos = 0.9 * np.maximum(k - 1, 0)
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        a = np.take_along_axis(srt, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(srt, hi[:, None], axis=1)[:, 0]
        expected = np.where(k > 0, a + (b - a) * (pos - lo), np.nan)  # linear percentile, as numpy's
        coverage = n / np.where(np.isfinite(expected) & (expected > 0), expected, np.nan)[:, None]
    out: Floats = np.where(np.nan_to_num(coverage) >= min_coverage, mean, np.nan)
    return out


def single_device(quantity: str, raw: Floats, ref: Floats, rh: Floats | None = None, *,
                  sensor_type: str = "", epa_eligible: bool = False) -> CalibrationInput:
    """A co-location campaign: one device beside its reference (no neighbours)."""
    raw2 = np.atleast_2d(np.asarray(raw, np.float64))
    ref2 = np.atleast_2d(np.asarray(ref, np.float64))
    rh2 = empty_grid(*raw2.shape) if rh is None else np.atleast_2d(np.asarray(rh, np.float64))
    return CalibrationInput(quantity, raw2, ref2, rh2, ref2, np.zeros((1, 1), np.bool_), (sensor_type,),
                            np.array([epa_eligible]))
