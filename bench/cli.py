"""The `civicair bench` command group: every benchmark prints ratios against a baseline measured
in the same run (figures in BENCHMARKS.md). Registered into the root CLI by `civicair.cli`."""

from __future__ import annotations

import typer
from civicair.bench.api import bench_api
from civicair.bench.calibration import bench_calibration
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
bench_app.command("calibration")(bench_calibration)
