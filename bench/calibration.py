"""`civicair bench calibration`: the production computation (`calibration.assess.assess`, the
function the scheduled job, `civicair calibrate` and `calibration evaluate` run) on N devices × D
days of hourly grids, against a plain batched numpy OLS ``ref ~ 1 + raw + RH`` of the same grids
timed in the same run; best of `--repeat`. Every device is co-located (the heavy path), in
neighbourhoods of 8 same-type devices, with realistic humidity (humid nights)."""

from __future__ import annotations

import json

import typer


def bench_calibration(
    devices: int = typer.Option(1000, "--devices"),
    days: int = typer.Option(90, "--days"),
    repeat: int = typer.Option(3, "--repeat", help="Best of this many runs"),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object"),
) -> None:
    """The calibration pipeline on N devices × D days (target: 1,000 × 90 d in ≤ 10 s)."""
    from civicair.bench.calibration_run import run_benchmark
    from civicair.core.console import console

    r = run_benchmark(devices, days, repeat)
    for stage, seconds in r["stages_alone"].items():
        console.print(f"  {stage:<40} {seconds:7.3f} s", highlight=False)
    console.print(f"calibration pipeline: {r['devices']} devices × {r['hours']} h in {r['seconds']:.2f} s "
                  f"(best of {repeat}; target ≤ 10 s: {'met' if r['seconds'] <= 10 else 'NOT met'}), "
                  f"{r['ratio_to_plain_ols']}× a plain numpy OLS of the same grids ({r['plain_ols_seconds']:.3f} s); "
                  f"{r['flags']} flags, {r['humid_hours_flagged']} humid hours flagged", highlight=False)
    if as_json:
        print(json.dumps(r))
