"""The `civicair bench` command group: every benchmark prints ratios against a baseline measured
in the same run (figures in BENCHMARKS.md). Registered into the root CLI by `civicair.cli`."""

from __future__ import annotations

import json

import typer
from civicair.bench.api import bench_api
from civicair.bench.ingest import bench_ingest
from civicair.bench.map import bench_map
from civicair.bench.mobile import bench_mobile
from civicair.bench.push import bench_push
from civicair.bench.sta import bench_sta
from civicair.bench.startup import bench_cli

bench_app = typer.Typer(help="Benchmarks: print ratios against a baseline measured in the same run.",
                        no_args_is_help=True)
bench_app.command("api")(bench_api)
bench_app.command("ingest")(bench_ingest)
bench_app.command("cli")(bench_cli)
bench_app.command("mobile")(bench_mobile)
bench_app.command("map")(bench_map)
bench_app.command("sta")(bench_sta)
bench_app.command("push")(bench_push)


@bench_app.command("calibration")
def bench_calibration(
    devices: int = typer.Option(1000, "--devices"),
    days: int = typer.Option(90, "--days"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fit, flag and rate N devices × D days of hourly data (target: 1,000 × 90 d in ≤ 10 s)."""
    from civicair.bench.calibration import run_benchmark
    from civicair.core.console import console

    result = run_benchmark(devices, days)
    for stage, seconds in result["stages"].items():
        console.print(f"  {stage:<22} {seconds:7.3f} s", highlight=False)
    console.print(f"calibration: {result['devices']} devices × {result['hours']} h in {result['seconds']:.2f} s "
                  f"(target ≤ 10 s: {'met' if result['seconds'] <= 10 else 'NOT met'})", highlight=False)
    if as_json:
        print(json.dumps(result))
