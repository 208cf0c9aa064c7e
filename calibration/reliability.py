"""Reliability status per device (docs/calibration.md#reliability-status): reliable, suspect, unreliable, insufficient_data,
with the reasons. Vectorised: inputs are per-device arrays (flagged hours, metrics, stars)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RELIABLE, SUSPECT, UNRELIABLE, INSUFFICIENT = "reliable", "suspect", "unreliable", "insufficient_data"


@dataclass(frozen=True)
class ReliabilityRules:
    min_valid_hours: int = 72
    unreliable_stuck_hours: int = 24
    unreliable_out_of_range_share: float = 0.10
    unreliable_disagree_share: float = 0.5  # of the window's hours
    unreliable_r2: float = 0.5
    suspect_spike_hours: int = 1
    suspect_gap_share: float = 0.25
    suspect_humidity_share: float = 0.25
    suspect_r2: float = 0.7
    suspect_stars: int = 2


def classify(
    valid_hours: np.ndarray,
    flag_hours: dict[str, np.ndarray],
    *,
    total_hours: int,
    r2: np.ndarray | None = None,
    stars: np.ndarray | None = None,
    rules: ReliabilityRules = ReliabilityRules(),
) -> tuple[np.ndarray, list[list[str]]]:
    """Status and reasons per device. `flag_hours[name]` is flagged hours per device."""
    n = valid_hours.shape[0]
    zero = np.zeros(n)
    fh = {k: np.asarray(flag_hours.get(k, zero), float) for k in
          ("stuck", "out_of_range", "spike", "gap", "high_humidity", "drift", "disagrees", "clock")}
    total = max(total_hours, 1)
    r2v = np.full(n, np.nan) if r2 is None else np.asarray(r2, float)
    st = np.zeros(n) if stars is None else np.asarray(stars, float)

    unreliable = {
        "stuck for {} h": fh["stuck"] >= rules.unreliable_stuck_hours,
        "out of range on {:.0%} of hours": fh["out_of_range"] / total > rules.unreliable_out_of_range_share,
        "disagrees with station/neighbours on {:.0%} of hours": fh["disagrees"] / total >= rules.unreliable_disagree_share,
        "drift of residuals vs reference": fh["drift"] > 0,
        "R² vs reference {:.2f} < 0.5": np.nan_to_num(r2v, nan=1.0) < rules.unreliable_r2,
    }
    suspect = {
        "stuck for {} h": (fh["stuck"] > 0),
        "{} spike hour(s)": fh["spike"] >= rules.suspect_spike_hours,
        "data gaps on {:.0%} of hours": fh["gap"] / total > rules.suspect_gap_share,
        "RH > 85 % on {:.0%} of hours (optical PM over-reads)": fh["high_humidity"] / total > rules.suspect_humidity_share,
        "clock problem": fh["clock"] > 0,
        "disagrees with station/neighbours on {:.0%} of hours": fh["disagrees"] > 0,
        "R² vs reference {:.2f} < 0.7": np.nan_to_num(r2v, nan=1.0) < rules.suspect_r2,
        "{:.0f} star(s)": (st > 0) & (st <= rules.suspect_stars),
        "out of range on {:.0%} of hours": fh["out_of_range"] > 0,
    }
    arg = {
        "stuck for {} h": fh["stuck"].astype(int),
        "out of range on {:.0%} of hours": fh["out_of_range"] / total,
        "disagrees with station/neighbours on {:.0%} of hours": fh["disagrees"] / total,
        "{} spike hour(s)": fh["spike"].astype(int),
        "data gaps on {:.0%} of hours": fh["gap"] / total,
        "RH > 85 % on {:.0%} of hours (optical PM over-reads)": fh["high_humidity"] / total,
        "R² vs reference {:.2f} < 0.5": r2v,
        "R² vs reference {:.2f} < 0.7": r2v,
        "{:.0f} star(s)": st,
    }
    insufficient = valid_hours < rules.min_valid_hours
    is_unrel = np.zeros(n, bool)
    for m in unreliable.values():
        is_unrel |= m
    is_susp = np.zeros(n, bool)
    for m in suspect.values():
        is_susp |= m
    status = np.where(insufficient, INSUFFICIENT, np.where(is_unrel, UNRELIABLE, np.where(is_susp, SUSPECT, RELIABLE)))

    reasons: list[list[str]] = [[] for _ in range(n)]
    idx_ins = np.nonzero(insufficient)[0]
    for i in idx_ins:
        reasons[i].append(f"only {int(valid_hours[i])} valid hours (< {rules.min_valid_hours})")
    for table in (unreliable, suspect):
        for template, m in table.items():
            for i in np.nonzero(m & ~insufficient)[0]:
                text = template.format(arg[template][i]) if "{" in template else template
                if text not in reasons[i]:
                    reasons[i].append(text)
    return status, reasons
