"""Partner reports: a JSON document and a self-contained HTML page with inline SVG plots
(matplotlib, no pyplot state: safe in API worker threads)."""

from __future__ import annotations

import html
import io
import json
from typing import Any

import numpy as np
from civicair.calibration.importers import parse_iso_utc
from civicair.calibration.metrics import epa_target_results
from matplotlib.figure import Figure

TARGET_TEXT = {"r2": "R² ≥ 0.70", "slope": "slope 1 ± 0.35", "intercept": "|intercept| ≤ 5 µg/m³",
               "rmse_or_nrmse": "RMSE ≤ 7 µg/m³ or NRMSE ≤ 30 %", "completeness": "completeness ≥ 75 %"}


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _arr(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def plots(series: dict[str, list]) -> dict[str, str]:
    """scatter raw/calibrated vs reference (1:1 line), time series, residuals vs RH."""
    if not series or not series.get("hours"):
        return {}
    ref, raw, cal = _arr(series["reference"]), _arr(series["raw"]), _arr(series["calibrated"])
    rh = _arr(series.get("rh") or [None] * ref.size)
    times = np.array([np.datetime64(parse_iso_utc(h).replace(tzinfo=None), "s") for h in series["hours"]])
    out = {}
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.scatter(ref, raw, s=6, alpha=0.5, label="raw")
    ax.scatter(ref, cal, s=6, alpha=0.5, label="calibrated")
    top = float(np.nanmax(np.concatenate([ref, raw, cal]))) if np.isfinite(ref).any() else 1.0
    ax.plot([0, top], [0, top], "k--", lw=1, label="1:1")
    ax.set_xlabel("reference (µg/m³)")
    ax.set_ylabel("sensor (µg/m³)")
    ax.legend()
    out["scatter"] = _svg(fig)
    fig = Figure(figsize=(9, 3))
    ax = fig.add_subplot()
    ax.plot(times, ref, lw=1, label="reference", color="k")
    ax.plot(times, raw, lw=0.8, label="raw")
    ax.plot(times, cal, lw=0.8, label="calibrated")
    ax.set_ylabel("µg/m³")
    ax.legend()
    fig.autofmt_xdate()
    out["timeseries"] = _svg(fig)
    if np.isfinite(rh).any():
        fig = Figure(figsize=(5, 3.5))
        ax = fig.add_subplot()
        ax.scatter(rh, cal - ref, s=6, alpha=0.5)
        ax.axhline(0, color="k", lw=1)
        ax.set_xlabel("relative humidity (%)")
        ax.set_ylabel("calibrated − reference (µg/m³)")
        out["residuals_rh"] = _svg(fig)
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}"
    return html.escape(str(v))


def render_html(report: dict[str, Any], title: str) -> str:
    """A self-contained page: model, metrics vs EPA targets, class, flags with evidence, data
    window, plots. Every value is escaped."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px}.ok{color:#070}.ko{color:#b00}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    model = report.get("model")
    if model:
        parts.append("<h2>Model</h2><p>reference = a + b·raw + c·RH — method "
                     f"<b>{_fmt(model.get('method'))}</b>: a = {_fmt(model.get('a'))}, b = {_fmt(model.get('b'))}, "
                     f"c = {_fmt(model.get('c'))}</p>")
    window = report.get("window")
    if window:
        parts.append("<h2>Data window</h2><p>" + ", ".join(f"{html.escape(k)}: {_fmt(v)}" for k, v in window.items())
                     + "</p>")
    metric_sets = [(k, report[k]) for k in ("metrics_raw", "metrics_calibrated", "metrics_fit") if report.get(k)]
    if metric_sets:
        keys = ["r2", "slope", "intercept", "rmse", "nrmse", "mae", "completeness", "n"]
        parts.append("<h2>Performance (US-EPA 2021 targets)</h2><table><tr><th>metric</th>"
                     + "".join(f"<th>{html.escape(k)}</th>" for k, _ in metric_sets) + "</tr>")
        for k in keys:
            parts.append(f"<tr><td>{k}</td>" + "".join(f"<td>{_fmt(m.get(k))}</td>" for _, m in metric_sets) + "</tr>")
        parts.append("</table>")
        cal = report.get("metrics_calibrated")
        if cal:
            res = epa_target_results(cal)
            parts.append("<ul>" + "".join(
                f"<li class='{'ok' if ok else 'ko'}'>{TARGET_TEXT[k]}: {'met' if ok else 'not met'}</li>"
                for k, ok in res.items()) + "</ul>")
    if "uncertainty_pct" in report:
        parts.append(f"<h2>Uncertainty and class</h2><p>expanded relative uncertainty at the limit value: "
                     f"{_fmt(report.get('uncertainty_pct'))} % → class {_fmt(report.get('class'))} "
                     "(CEN/TS 17660-1)</p>")
    for key in ("status", "stars"):
        if key in report:
            parts.append(f"<p>{key}: <b>{_fmt(report[key])}</b></p>")
    if report.get("devices"):
        parts.append("<h2>Co-located devices</h2><table><tr><th>device</th><th>status</th><th>stars</th>"
                     "<th>method</th><th>R²</th><th>uncertainty %</th><th>class</th></tr>")
        for d in report["devices"]:
            parts.append(f"<tr><td>{_fmt(d.get('pseudonym'))}</td><td>{_fmt(d.get('status'))}</td>"
                         f"<td>{_fmt(d.get('stars'))}</td><td>{_fmt(d.get('method'))}</td><td>{_fmt(d.get('r2'))}</td>"
                         f"<td>{_fmt(d.get('uncertainty_pct'))}</td><td>{_fmt(d.get('class'))}</td></tr>")
        parts.append("</table>")
    flags = report.get("flags") or []
    parts.append(f"<h2>QA flags ({len(flags)})</h2>")
    if flags:
        parts.append("<table><tr><th>flag</th><th>from</th><th>to</th><th>evidence</th></tr>")
        for f in flags[:500]:
            parts.append(f"<tr><td>{_fmt(f.get('flag'))}</td><td>{_fmt(f.get('start'))}</td><td>{_fmt(f.get('end'))}</td>"
                         f"<td><code>{html.escape(json.dumps(f.get('evidence'), default=str))}</code></td></tr>")
        parts.append("</table>")
    for name, svg in plots(report.get("series") or {}).items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2><figure>{svg}</figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def json_safe(obj: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
