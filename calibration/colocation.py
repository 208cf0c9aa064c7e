"""Who is compared with whom (docs/calibration.md#co-location-and-pairing): the co-located station,
the cross-check station and the same-type neighbours of each device, from positions (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from civicair.calibration.geo import distance_matrix_m
from civicair.calibration.grids import Bools, Floats, Ints


def is_background(station_type: str | None) -> bool:
    """Background stations ("Fond" in E2, "background" in EEA); an unknown type counts as one."""
    if not station_type:
        return True
    t = station_type.lower()
    return "fond" in t or "background" in t


@dataclass(frozen=True)
class Colocation:
    nearest: Ints  # index of each device's nearest station (any type)
    colocated: Bools  # that station is within the co-location distance
    crosscheck: Ints  # the co-located station, else the nearest background station
    has_crosscheck: Bools  # within the cross-check distance
    distance_m: Floats  # to the nearest station


def colocate(dev_lat: Floats, dev_lon: Floats, st_lat: Floats, st_lon: Floats, background: Bools, *,
             colocation_m: float, crosscheck_m: float) -> Colocation:
    d = dev_lat.size
    if st_lat.size == 0:
        zero = np.zeros(d, np.int64)
        return Colocation(zero, np.zeros(d, bool), zero, np.zeros(d, bool), np.full(d, np.inf))
    dist = distance_matrix_m(dev_lat, dev_lon, st_lat, st_lon)
    nearest = dist.argmin(axis=1)
    near_m = dist[np.arange(d), nearest]
    dist_bg = np.where(background[None, :], dist, np.inf)
    nearest_bg = dist_bg.argmin(axis=1)
    near_bg_m = dist_bg[np.arange(d), nearest_bg]
    colocated = near_m <= colocation_m
    return Colocation(nearest.astype(np.int64), colocated, np.where(colocated, nearest, nearest_bg).astype(np.int64),
                      colocated | (near_bg_m <= crosscheck_m), near_m)


def neighbours(lat: Floats, lon: Floats, types: tuple[str, ...], *, max_m: float, k: int) -> Bools:
    """Same-type devices within `max_m`, at most the k nearest, never oneself (D × D)."""
    dist = distance_matrix_m(lat, lon, lat, lon)
    t = np.array(types, dtype=object)
    nb = (dist <= max_m) & (t[:, None] == t[None, :]) & (t[:, None] != "")
    np.fill_diagonal(nb, False)
    return nearest_only(nb, dist, k)


def nearest_only(nb: Bools, dist: Floats, k: int) -> Bools:
    """Keep, per row, only the k nearest of the True entries."""
    if nb.shape[1] <= k:
        return nb
    dd = np.where(nb, dist, np.inf)
    kth = np.partition(dd, k - 1, axis=1)[:, k - 1: k]
    out: Bools = nb & (dd <= kth)
    return out
