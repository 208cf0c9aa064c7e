"""`civicair bench cli`: start-up of light commands (`civicair --help` and the help of every
command group) against `python -c pass`, measured in the same run; the median of `--runs`."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import typer

LIGHT = (["--help"], ["calibration", "--help"], ["device", "--help"], ["bench", "--help"], ["zones", "--help"],
         ["sta", "--help"])
HEAVY = ("fastapi", "matplotlib", "numpy", "scipy", "sqlalchemy", "pyarrow", "paho", "uvicorn")


def _median_s(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def heavy_imports(args: list[str]) -> list[str]:
    """The heavy libraries a light command imports (none expected)."""
    probe = ("import contextlib, io, sys\nfrom civicair.cli import app\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        app(" + repr(args) + ")\n"
             "    except SystemExit:\n        pass\n"
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(" + repr(HEAVY) + "))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.split()


def bench_cli(runs: int = typer.Option(7, "--runs", min=1), as_json: bool = typer.Option(False, "--json")) -> None:
    """`civicair --help` and the command groups' help: seconds and ratio to `python -c pass`."""
    from civicair.core.console import console

    baseline = _median_s([sys.executable, "-c", "pass"], runs)
    commands: dict[str, dict[str, object]] = {}
    for args in LIGHT:
        seconds = _median_s([sys.executable, "-m", "civicair", *args], runs)
        name, heavy = "civicair " + " ".join(args), heavy_imports(args)
        commands[name] = {"seconds": round(seconds, 4), "ratio": round(seconds / baseline, 1), "heavy_imports": heavy}
        console.print(f"{name:<28} {seconds:6.3f} s  ({seconds / baseline:5.1f}× python -c pass)  "
                      f"heavy imports: {', '.join(heavy) or 'none'}", highlight=False, soft_wrap=True)
    console.print(f"python -c pass               {baseline:6.3f} s  (target: every light command ≤ 1 s)",
                  highlight=False)
    if as_json:
        print(json.dumps({"python_c_pass_s": round(baseline, 4), "commands": commands}))
