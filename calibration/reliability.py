"""Reliability status per device and quantity (docs/calibration.md#reliability-status):
reliable, suspect, unreliable or insufficient_data, with the reasons in plain language; the stars
are capped so that status and stars agree (an unreliable device has at most 2). Pure.

Every reason is about the device's own data: its flags, its own model's evidence and its own
agreement with the station or trusted neighbours; never another device's fault."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from civicair.calibration.flags import Flags
from civicair.calibration.grids import Floats, Ints
from civicair.calibration.reasons import INSUFFICIENT, NOTE, SUSPECT, UNRELIABLE, Reason, status_of


@dataclass(frozen=True)
class ReliabilityRules:
    min_valid_hours: int = 72
    unreliable_stuck_hours: int = 24
    unreliable_out_of_range_share: float = 0.10
    unreliable_disagree_share: float = 0.5  # of the window's hours
    suspect_gap_share: float = 0.25
    suspect_humidity_share: float = 0.25
    suspect_skill: float = 0.5  # a published model explaining less than half the variance
    suspect_stars: int = 2
    max_stars_unreliable: int = 2


@dataclass(frozen=True)
class DeviceContext:
    """What the status rules need to know besides the flags, per device."""

    kind: tuple[str, ...]  # colocated | network | epa | none
    sensor_type: tuple[str, ...]
    network_donors: Ints
    skill: Floats
    model_reasons: tuple[tuple[Reason, ...], ...]  # from model selection
    drift_pct: Floats  # NaN where no drift flag
    clock_lag: Floats  # hours, NaN where no shift was found
    paired_hours: Ints  # hours with a co-located reference value
    min_pairs: int = 72


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def classify(quantity: str, valid_hours: Ints, flags: Flags, total_hours: int, stars: Ints, ctx: DeviceContext,
             rules: ReliabilityRules) -> tuple[tuple[str, ...], tuple[tuple[Reason, ...], ...], Ints]:
    """(status, reasons, capped stars) per device."""
    d = valid_hours.shape[0]
    total = max(total_hours, 1)

    def hours(name: str) -> Ints:
        h = flags.hours(name)
        return h if h.size else np.zeros(d, np.int64)

    stuck, oor, spike, gap = hours("stuck"), hours("out_of_range"), hours("spike"), hours("gap")
    humid, clock, disagree = hours("high_humidity"), hours("clock"), hours("disagrees")
    statuses: list[str] = []
    all_reasons: list[tuple[Reason, ...]] = []
    capped = stars.copy()
    for i in range(d):  # a loop over devices to write sentences; every number was computed above
        out: list[Reason] = []
        if valid_hours[i] < rules.min_valid_hours:
            out.append(Reason("insufficient_data", INSUFFICIENT, (
                f"only {int(valid_hours[i])} hours with data in the window ({rules.min_valid_hours} needed "
                "to judge the device)")))
        out.extend(ctx.model_reasons[i])
        if stuck[i] >= rules.unreliable_stuck_hours:
            out.append(Reason("stuck", UNRELIABLE, f"the sensor reported the same value for {int(stuck[i])} hours"))
        elif stuck[i] > 0:
            out.append(Reason("stuck", SUSPECT, f"the sensor reported the same value for {int(stuck[i])} hours"))
        if oor[i] / total > rules.unreliable_out_of_range_share:
            out.append(Reason("out_of_range", UNRELIABLE,
                              f"values outside the plausible range on {_pct(oor[i] / total)} of the hours"))
        elif oor[i] > 0:
            out.append(Reason("out_of_range", SUSPECT, f"values outside the plausible range in {int(oor[i])} hours"))
        if np.isfinite(ctx.drift_pct[i]):
            out.append(Reason("drift", UNRELIABLE, (
                f"the difference to the reference drifts by {ctx.drift_pct[i]:+.0f} % of its mean per 30 days")))
        if disagree[i] / total >= rules.unreliable_disagree_share:
            out.append(Reason("disagrees", UNRELIABLE, (
                f"outside the range of the station and trusted neighbouring sensors on {_pct(disagree[i] / total)} "
                "of the hours")))
        elif disagree[i] > 0:
            out.append(Reason("disagrees", SUSPECT, (
                f"outside the range of the station and trusted neighbouring sensors on {int(-(-disagree[i] // 24))} "
                "day(s)")))
        if spike[i] > 0:
            out.append(Reason("spike", SUSPECT, f"{int(spike[i])} spike hour(s), left out of the calibration"))
        if gap[i] / total > rules.suspect_gap_share:
            out.append(Reason("gap", SUSPECT, f"data missing or incomplete on {_pct(gap[i] / total)} of the hours"))
        if quantity.startswith("pm") and humid[i] / total > rules.suspect_humidity_share:
            out.append(Reason("high_humidity", SUSPECT, (
                f"relative humidity above 85 % on {_pct(humid[i] / total)} of the hours (optical PM sensors "
                "over-read in humid air)")))
        if np.isfinite(ctx.clock_lag[i]):
            out.append(Reason("clock", SUSPECT, (
                f"the values follow the reference best when shifted by {ctx.clock_lag[i]:+.0f} h: the clock is off")))
        elif clock[i] > 0:
            out.append(Reason("clock", SUSPECT, f"{int(clock[i])} hour(s) with readings stamped at an implausible time"))
        if np.isfinite(ctx.skill[i]) and ctx.skill[i] < rules.suspect_skill:
            out.append(Reason("low_skill", SUSPECT, (
                f"the calibration explains only {_pct(max(float(ctx.skill[i]), 0.0))} of the reference's variation "
                "out of sample")))
        out.extend(_kind_notes(ctx, i))
        level = status_of(tuple(out))
        if level == UNRELIABLE and capped[i] > rules.max_stars_unreliable:
            capped[i] = rules.max_stars_unreliable
        if 0 < capped[i] <= rules.suspect_stars and level in ("reliable", SUSPECT):
            out.append(Reason("stars", SUSPECT, (
                f"{int(capped[i])} star(s): on the latest rated day the values differed from the station or "
                "neighbouring sensors by more than " + ("40 %" if capped[i] == 2 else "60 %") + " (median)")))
            level = SUSPECT
        statuses.append(level)
        all_reasons.append(tuple(out))
    return tuple(statuses), tuple(all_reasons), capped


def _kind_notes(ctx: DeviceContext, i: int) -> list[Reason]:
    kind, typ = ctx.kind[i], ctx.sensor_type[i] or "this sensor type"
    if kind == "network":
        return [Reason("network_model", NOTE, (
            f"no co-located reference: calibrated with the network model of {typ} (median of "
            f"{int(ctx.network_donors[i])} co-located devices)"))]
    if kind == "epa":
        return [Reason("epa_correction", NOTE, (
            "no co-located reference and no network model: calibrated with the US-EPA correction for "
            "Plantower sensors"))]
    if kind == "none" and not any(r.level == UNRELIABLE for r in ctx.model_reasons[i]):
        pairs = int(ctx.paired_hours[i])
        why = (f"only {pairs} hours paired with the co-located reference ({ctx.min_pairs} needed)" if pairs
               else "no co-located reference")
        return [Reason("not_calibrated", NOTE, (
            f"not calibrated: {why}, no network model for {typ}, and the US-EPA correction applies to "
            "Plantower PM2.5 sensors only; raw values are published"))]
    return []
