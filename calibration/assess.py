"""The one calibration computation (docs/calibration.md#the-calibration-run): one quantity's hourly
grids of many devices in, every result the job stores out. The scheduled job, `civicair
calibrate`, `civicair calibration evaluate` and `civicair bench calibration` all run `assess`.

flags of the raw means → usable hours (no faults) → RH usable as a regressor? → candidate fits by
blocked CV → selection → network models from the published co-located devices → network / US-EPA /
nothing for the others → calibrated grid → drift, clock shift and disagreement with trusted
neighbours → out-of-fold metrics, uncertainty and class → stars → status and reasons.

Pure: numpy arrays and frozen dataclasses, no session, settings object, clock or I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from civicair.calibration import flags as fl
from civicair.calibration.fit import (
    CANDIDATES,
    EPA,
    KOHLER,
    NETWORK,
    USES_RH,
    FitRules,
    fit_candidates,
    masked_median,
    rh_eligible,
)
from civicair.calibration.grids import Bools, CalibrationInput, Floats, Int8s, Ints
from civicair.calibration.metrics import (
    LIMIT_VALUES,
    expanded_uncertainty,
    performance_metrics,
    sensor_class,
)
from civicair.calibration.network import donor_models, network_models, network_sse
from civicair.calibration.reasons import Reason
from civicair.calibration.reliability import DeviceContext, ReliabilityRules, classify
from civicair.calibration.select import (
    Selection,
    SelectionRules,
    apply,
    choose,
    fold_predictions,
    tracking_t,
)
from civicair.calibration.stars import current_stars, daily_stars
from civicair.core.domain import QUANTITY_BY_NAME

KINDS = ("colocated", "network", "epa", "none")


@dataclass(frozen=True)
class CalibrationRules:
    fit: FitRules = field(default_factory=FitRules)
    select: SelectionRules = field(default_factory=SelectionRules)
    reliability: ReliabilityRules = field(default_factory=ReliabilityRules)
    flags: fl.FlagRules | None = None  # None: the quantity's plausible range (below)
    # An electrochemical gas cell reads a little below zero in clean air: that is noise the
    # calibration handles, not a fault.
    gas_negative_tolerance: float = 20.0

    def flag_rules(self, quantity: str) -> fl.FlagRules:
        if self.flags is not None:
            return self.flags
        q = QUANTITY_BY_NAME[quantity]
        low = q.low - (0.0 if quantity.startswith("pm") else self.gas_negative_tolerance)
        return fl.FlagRules(low=low, high=q.high)


@dataclass(frozen=True)
class Assessment:
    quantity: str
    selection: Selection  # method per device, including the network model and the EPA correction
    kind: tuple[str, ...]  # colocated | network | epa | none
    network_donors: Ints
    rh_allowed: Bools
    calibrated: Floats  # (D, H), NaN where nothing is published
    published: Floats  # (D, H): what the public sees (calibrated, else raw)
    flags: fl.Flags  # the quantity's flags (raw runs, window verdicts, disagreement)
    rh_flags: fl.Flags  # the RH channel's own flags
    fault: Bools  # (D, H) hours left out of fitting, judging and stars
    rh_bad: Bools  # (D, H) RH hours not usable as a regressor
    oof: Floats  # (D, H) out-of-fold predictions of the published model (co-located devices)
    metrics: dict[str, Floats]  # of `oof` against the reference
    uncertainty_pct: Floats
    sensor_class: Ints  # 0: not classifiable / nothing published
    daily_stars: Int8s
    stars: Ints  # capped: an unreliable device has at most 2
    status: tuple[str, ...]
    reasons: tuple[tuple[Reason, ...], ...]
    valid_hours: Ints
    paired_hours: Ints

    def method_name(self, i: int) -> str:
        return self.selection.method_name(i)


def envelope(values: Floats, station: Floats, neighbours: Bools, chunk: int = 64) -> tuple[Floats, Floats, Floats]:
    """Per device and hour: min and max over the cross-check station and the neighbours' values,
    and the neighbours' median (NaN values are not counted)."""
    d, h = values.shape
    k = int(neighbours.sum(axis=1).max(initial=0))
    low, high, med = station.copy(), station.copy(), np.full((d, h), np.nan)
    if k == 0:
        return low, high, med
    order = np.argsort(~neighbours, axis=1, kind="stable")[:, :k]  # neighbour indices first
    valid = np.take_along_axis(neighbours, order, axis=1)
    for s in range(0, d, chunk):
        idx, ok = order[s:s + chunk], valid[s:s + chunk]
        vals = np.where(ok[:, :, None], values[idx], np.nan)  # (c, k, H)
        fin = np.isfinite(vals)
        any_nb = fin.any(axis=1)
        lo_nb = np.where(fin, vals, np.inf).min(axis=1)
        hi_nb = np.where(fin, vals, -np.inf).max(axis=1)
        st = station[s:s + chunk]
        low[s:s + chunk] = np.where(any_nb, np.fmin(lo_nb, st), st)
        high[s:s + chunk] = np.where(any_nb, np.fmax(hi_nb, st), st)
        med[s:s + chunk] = masked_median(vals.transpose(0, 2, 1), fin.transpose(0, 2, 1))
    return low, high, med


def assess(inp: CalibrationInput, rules: CalibrationRules | None = None) -> Assessment:
    rules = rules or CalibrationRules()
    q = inp.quantity
    pm = q.startswith("pm")
    d, h = inp.shape
    fr = rules.flag_rules(q)
    raw, ref, rh = inp.raw, inp.ref, inp.rh

    # 1. flags of the raw means; faults are left out of everything below
    raw_flags = fl.hour_flags(raw, rules=fr, rh=rh if pm else None, ref=ref, clock_counts=inp.clock_counts)
    fault = raw_flags.masks["stuck"] | raw_flags.masks["spike"] | raw_flags.masks["out_of_range"]
    rh_stuck = fl.rh_stuck(rh, stuck_hours=fr.stuck_hours)
    rh_bad = fl.rh_unusable(rh, stuck=rh_stuck)
    rh_flags = fl.rh_channel_flags(rh, stuck=rh_stuck)
    usable = np.isfinite(raw) & np.isfinite(ref) & ~fault

    # 2. candidates by blocked cross-validation, then the choice
    fits = fit_candidates(raw, ref, rh, usable_pair=usable, rh_usable=~rh_bad, epa_allowed=inp.epa_eligible,
                          rules=rules.fit)
    if not pm:  # hygroscopic growth is a particle phenomenon
        fits = fits.with_column(KOHLER, np.full(d, np.inf), fits.coef[:, KOHLER, -1])
    track = tracking_t(raw, ref, usable)
    first = choose(fits, track, rules.select, rules.fit.min_pairs)

    # 3. network models of the sensor types from the published co-located devices
    donor, da, db = donor_models(first)
    na, nb, n_donors = network_models(inp.sensor_type, donor, da, db, rules.select.network_min_donors)
    net_coef = np.stack([np.nan_to_num(na), np.nan_to_num(nb, nan=1.0), np.zeros(d), np.zeros(d)], axis=1)
    fits = fits.with_column(NETWORK, network_sse(fits, raw, ref, na, nb), net_coef)
    sel = choose(fits, track, rules.select, rules.fit.min_pairs)

    # 4. the devices not judged against a reference of their own
    sel, kind = _without_reference(sel, na, nb, inp.epa_eligible)
    # without a reference, RH is judged on the device's own hours with data
    rh_own, _, _ = rh_eligible(np.isfinite(raw) & ~fault, rh, ~rh_bad, rules.fit)
    rh_allowed = np.where(sel.assessed, fits.rh_allowed, rh_own)
    calibrated = apply(sel, raw, rh, ~rh_bad, rh_allowed, rules.fit.aw_cap)
    published = np.where((sel.method >= 0)[:, None], calibrated, raw)

    # 5. verdicts over the window, and agreement with the station and *trusted* neighbours
    judged = sel.assessed & (sel.method >= 0)
    wf = fl.window_flags(np.where(judged[:, None] & ~fault, calibrated, np.nan), np.where(fault, np.nan, raw), ref,
                         rules=fr)
    stuck_long = raw_flags.hours("stuck") >= rules.reliability.unreliable_stuck_hours
    untrusted = wf.masks["drift"].any(axis=1) | (sel.assessed & (sel.method < 0)) | stuck_long
    trusted = np.where(fault | untrusted[:, None], np.nan, published)
    low, high, neighbour_median = envelope(trusted, inp.cross_ref, inp.neighbours)
    dis = fl.disagreement_flags(published, low, high, rules=fr)
    flags = fl.merge(raw_flags, wf, dis)

    # 6. judged out of fold (the honest figure), with the orthogonal regression of the GDE
    oof = np.where(fault, np.nan, fold_predictions(sel.method, fits, raw, rh, rules.fit.aw_cap))
    oof = np.where(judged[:, None], oof, np.nan)
    metrics = performance_metrics(oof, ref)
    unc = expanded_uncertainty(oof, ref, LIMIT_VALUES.get(q, 25.0))
    cls = np.where(judged, sensor_class(unc, q), 0)

    # 7. stars and status
    comparison = np.where(np.isfinite(inp.cross_ref), inp.cross_ref, neighbour_median)
    daily = daily_stars(published, comparison, fault)
    valid_hours = np.isfinite(raw).sum(axis=1).astype(np.int64)
    paired = (np.isfinite(raw) & np.isfinite(ref)).sum(axis=1).astype(np.int64)
    ctx = DeviceContext(kind=kind, sensor_type=inp.sensor_type, network_donors=n_donors, skill=sel.skill,
                        model_reasons=sel.reasons, drift_pct=_window_value(wf, "drift", "pct_per_30_days", d),
                        clock_lag=_window_value(wf, "clock", "lag_hours", d), paired_hours=paired,
                        min_pairs=rules.fit.min_pairs)
    status, reasons, stars = classify(q, valid_hours, flags, h, current_stars(daily), ctx, rules.reliability)
    return Assessment(quantity=q, selection=sel, kind=kind, network_donors=n_donors, rh_allowed=rh_allowed,
                      calibrated=calibrated, published=published, flags=flags, rh_flags=rh_flags, fault=fault,
                      rh_bad=rh_bad, oof=oof, metrics=metrics, uncertainty_pct=np.where(judged, unc, np.nan),
                      sensor_class=cls.astype(np.int64), daily_stars=daily, stars=stars, status=status,
                      reasons=reasons, valid_hours=valid_hours, paired_hours=paired)


def _without_reference(sel: Selection, na: Floats, nb: Floats, epa_eligible: Bools) -> tuple[Selection, tuple[str, ...]]:
    """Devices with too few pairs get the network model of their type, else the US-EPA correction
    where it was derived for their sensor, else nothing."""
    free = ~sel.assessed
    use_net = free & np.isfinite(na) & np.isfinite(nb)
    use_epa = free & ~use_net & epa_eligible
    method = np.where(use_net, NETWORK, np.where(use_epa, EPA, sel.method)).astype(np.int64)
    kind = tuple("colocated" if sel.assessed[i] and method[i] >= 0 else
                 "network" if use_net[i] else "epa" if use_epa[i] else "none" for i in range(method.size))
    new = Selection(method=method, fallback=np.where(free, -1, sel.fallback),
                    a=np.where(use_net, na, sel.a), b=np.where(use_net, nb, sel.b),
                    c=np.where(free, 0.0, sel.c), kappa=np.where(free, 0.0, sel.kappa),
                    fa=sel.fa, fb=sel.fb, cv_rmse=sel.cv_rmse, cv_rmse_constant=sel.cv_rmse_constant,
                    skill=sel.skill, track_t=sel.track_t, assessed=sel.assessed, reasons=sel.reasons)
    return new, kind


def _window_value(flags: fl.Flags, name: str, column: str, d: int) -> Floats:
    out = np.full(d, np.nan)
    t = flags.table
    rows = t.rows_of(name)
    if rows.size and column in t.evidence:
        out[t.device[rows]] = t.evidence[column][rows]
    return out


def cv_table(sel: Selection, i: int) -> dict[str, float | None]:
    """One device's cross-validated RMSE per candidate (None where not allowed) and the constant's."""
    out: dict[str, float | None] = {n: (float(v) if np.isfinite(v) else None)
                                    for n, v in zip(CANDIDATES, sel.cv_rmse[i], strict=True)}
    c = float(sel.cv_rmse_constant[i])
    out["constant"] = c if np.isfinite(c) else None
    return out


def model_of(a: Assessment, i: int) -> dict[str, object] | None:
    """Device i's published model as plain values (None when nothing is published)."""
    s = a.selection
    m = int(s.method[i])
    if m < 0:
        return None
    out: dict[str, object] = {"method": CANDIDATES[m], "a": float(s.a[i]), "b": float(s.b[i]), "c": float(s.c[i]),
                              "kappa": float(s.kappa[i]), "rh_used": bool(a.rh_allowed[i]) and bool(USES_RH[m])}
    f = int(s.fallback[i])
    out["fallback"] = {"method": CANDIDATES[f], "a": float(s.fa[i]), "b": float(s.fb[i])} if f >= 0 else None
    if a.kind[i] == "network":
        out["donors"] = int(a.network_donors[i])
    return out


def cv_of(a: Assessment, i: int) -> dict[str, object] | None:
    """Device i's cross-validation evidence (None when it was not judged against a reference)."""
    s = a.selection
    if not s.assessed[i]:
        return None

    def num(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    return {"rmse": {n: num(v) for n, v in zip(CANDIDATES, s.cv_rmse[i], strict=True)},
            "constant": num(float(s.cv_rmse_constant[i])), "skill": num(float(s.skill[i])),
            "tracking_t": num(float(s.track_t[i]))}
