"""The `civicair bench` command group; packages add their benchmarks to it
(`from core.bench import bench_app`, then `@bench_app.command("ingest")`)."""

import typer

bench_app = typer.Typer(help="Benchmarks: print ratios against a baseline measured in the same run.",
                        no_args_is_help=True)
