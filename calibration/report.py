"""Calibration reports (docs/calibration.md#partner-reports): one JSON document for every device
state (co-located, network model, US-EPA correction, not calibrated, insufficient data,
unreliable) and its HTML page (Jinja2, inline SVG plots drawn with matplotlib without pyplot
state, safe in API worker threads). The same document serves the partner API and the offline
campaign evaluation."""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Any

import numpy as np
from civicair.calibration.fit import EPA_MODEL
from civicair.calibration.importers import parse_iso_utc
from civicair.calibration.metrics import EPA_TARGET_TEXT, LIMIT_VALUES
from civicair.core.domain import QUANTITY_BY_NAME

STATES = ("colocated", "network", "epa", "none", "insufficient_data", "unreliable")
STATE_TEXT = {
    "colocated": "calibrated against a co-located reference station",
    "network": "calibrated with the network model of its sensor type",
    "epa": "calibrated with the US-EPA correction",
    "none": "not calibrated (raw values)",
    "insufficient_data": "not enough data to judge",
    "unreliable": "unreliable",
}
METHOD_TEXT = {"identity": "raw values (no fit did better)", "network": "network model of the sensor type",
               "epa": "US-EPA correction (Barkjohn et al. 2021)", "ols": "least squares", "huber": "robust (Huber)",
               "ols_rh": "least squares with RH", "huber_rh": "robust (Huber) with RH",
               "kohler": "κ-Köhler humidity growth"}


def state_of(kind: str, status: str) -> str:
    if status == "insufficient_data":
        return "insufficient_data"
    if status == "unreliable":
        return "unreliable"
    return kind


def _n(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def equation(model: dict[str, Any] | None, sensor_type: str | None = None) -> str | None:
    if not model:
        return None
    m = model.get("method")
    a, b, c, k = (model.get(x) or 0.0 for x in ("a", "b", "c", "kappa"))
    if m == "identity":
        return "reference = raw"
    if m == "epa":
        e = EPA_MODEL
        return (f"reference = {e.b:g} × raw − {-e.c:g} × RH + {e.a:g} (up to {e.breakpoint:g} µg/m³; "
                f"RH {e.rh_default:g} % where unknown)")
    if m == "kohler":
        return (f"reference = {a:.3f} + {b:.3f} × raw / (1 + {k:.2f}/1.65 × aw/(1 − aw)), aw = RH/100 "
                "(capped at 0.98)")
    text = f"reference = {a:.3f} {'−' if b < 0 else '+'} {abs(b):.3f} × raw"
    if m in ("ols_rh", "huber_rh") and c:
        text += f" {'−' if c < 0 else '+'} {abs(c):.4f} × RH"
    if m == "network" and sensor_type:
        text += f" (network model of {sensor_type})"
    return text


def verdict(doc: dict[str, Any]) -> str:
    """A plain-language paragraph an engineer can forward: what was measured where and when, how
    it was calibrated, how good it is, and why the status is what it is."""
    q = doc["quantity_label"]
    who = f"Device {doc['device']}" + (f" ({doc['sensor_model']})" if doc.get("sensor_model") else "")
    st = doc.get("station") or {}
    where = f" beside station {st.get('code')}" + (f" {st['name']}" if st.get("name") else "") if st.get("code") else ""
    w = doc.get("window") or {}
    when = f" from {str(w.get('start'))[:16]} to {str(w.get('end'))[:16]} UTC" if w.get("start") else ""
    parts = [f"{who}, {q} in {doc['unit']}{where}{when}: {STATE_TEXT.get(doc['state'], doc['state'])}."]
    model, metrics = doc.get("model"), doc.get("metrics") or {}
    problems = [r["text"] for r in doc.get("reasons", []) if r["level"] in ("unreliable", "suspect", "insufficient_data")]
    if model:
        parts.append(f"Published model: {METHOD_TEXT.get(model['method'], model['method'])}, {doc.get('equation')}.")
        cal, raw = metrics.get("calibrated") or metrics.get("out_of_fold"), metrics.get("raw")
        if cal and cal.get("rmse") is not None:
            basis = "on the test period" if doc.get("basis") == "test" else "out of sample (cross-validation)"
            raw_txt = f" against {_n(raw['rmse'])} for the raw values" if raw and raw.get("rmse") is not None else ""
            parts.append(f"Error {basis}: RMSE {_n(cal['rmse'])} {doc['unit']}{raw_txt}.")
        if cal and cal.get("slope") is not None and cal["slope"] < 0.65:
            parts.append(f"The calibrated values are pulled towards the mean (slope {cal['slope']:.2f} against the "
                         "reference): the price of the smallest error for a sensor that follows the reference "
                         "loosely; peaks are underestimated.")
        if doc.get("uncertainty_pct") is not None:
            parts.append(f"Expanded uncertainty {doc['uncertainty_pct']:.0f} % at the limit value "
                         f"{_n(doc.get('limit_value'))} {doc['unit']}: class {doc.get('class') or '–'} (CEN/TS 17660).")
        elif doc["state"] in ("network", "epa"):
            parts.append("Without a co-located reference its accuracy is not measured; the stars compare it with the "
                         "nearest station or neighbouring sensors.")
    elif doc["state"] in ("unreliable", "colocated"):
        parts.append("No calibration is published; the raw values are kept and flagged, and the device is left out "
                     "of the public zone series.")
    elif doc["state"] == "none":
        parts.append("Its raw values are published as they are.")
    if doc.get("status"):
        stars = f", {doc['stars']} star(s)" if doc.get("stars") else ""
        parts.append(f"Status: {doc['status']}{stars}" + (" — " + "; ".join(problems) + "." if problems else "."))
    return " ".join(parts)


def flag_tables(flags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flags grouped by (flag, quantity), evidence as columns."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in flags:
        groups.setdefault((str(f.get("flag")), str(f.get("quantity") or "")), []).append(f)
    out = []
    for (name, qty), rows in sorted(groups.items()):
        keys = sorted({k for r in rows for k in (r.get("evidence") or {})})
        out.append({"flag": name, "quantity": qty, "columns": keys, "count": len(rows),
                    "rows": [{"start": r.get("start"), "end": r.get("end"),
                              "values": [_n((r.get("evidence") or {}).get(k), 4) for k in keys]} for r in rows[:200]]})
    return out


def document(*, title: str, device: str, sensor_model: str | None, quantity: str, station: dict[str, Any] | None,
             window: dict[str, Any], kind: str, status: str, stars: int | None, model: dict[str, Any] | None,
             cv: dict[str, Any] | None, metrics: dict[str, dict[str, Any] | None], basis: str,
             uncertainty_pct: float | None, sensor_class: int | None, epa_targets: dict[str, bool] | None,
             reasons: list[dict[str, Any]], warnings: list[str], flags: list[dict[str, Any]],
             series: dict[str, Any] | None, daily_stars: dict[str, int] | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report document of one device and quantity, in every state."""
    q = QUANTITY_BY_NAME[quantity]
    doc: dict[str, Any] = {
        "title": title, "device": device, "sensor_model": sensor_model, "quantity": quantity,
        "quantity_label": q.label, "unit": q.unit, "station": station if station and station.get("code") else None,
        "window": window, "kind": kind, "state": state_of(kind, status), "status": status, "stars": stars or None,
        "model": model, "equation": equation(model, sensor_model), "cv": cv, "metrics": metrics, "basis": basis,
        "limit_value": LIMIT_VALUES.get(quantity), "uncertainty_pct": uncertainty_pct, "class": sensor_class,
        "epa_targets": epa_targets, "reasons": reasons, "warnings": warnings, "flags": flags,
        "daily_stars": daily_stars or {}, "series": series or None,
    }
    cal = metrics.get("calibrated") or metrics.get("out_of_fold")
    comp = cal.get("completeness") if cal else (metrics.get("raw") or {}).get("completeness")
    doc["completeness_pct"] = None if comp is None else round(100 * float(comp), 1)
    doc.update(extra or {})
    doc["verdict"] = verdict(doc)
    return doc


# --- HTML --------------------------------------------------------------------------------------
def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _arr(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def plots(series: dict[str, Any] | None, unit: str, label: str) -> dict[str, str]:
    """Scatter of raw and calibrated against the reference (1:1 line), time series, residuals
    against RH; only what the series holds."""
    if not series or not series.get("hours"):
        return {}
    from matplotlib.figure import Figure

    ref, raw = _arr(series["reference"]), _arr(series["raw"])
    cal = _arr(series.get("calibrated") or [None] * ref.size)
    rh = _arr(series.get("rh") or [None] * ref.size)
    has_cal = bool(np.isfinite(cal).any())
    times = np.array([np.datetime64(parse_iso_utc(h).replace(tzinfo=None), "s") for h in series["hours"]])
    out = {}
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.scatter(ref, raw, s=6, alpha=0.5, label="raw")
    if has_cal:
        ax.scatter(ref, cal, s=6, alpha=0.5, label="calibrated")
    top = float(np.nanmax(np.concatenate([ref, raw, cal]))) if np.isfinite(ref).any() else 1.0
    ax.plot([0, top], [0, top], "k--", lw=1, label="1:1")
    ax.set_xlabel(f"reference {label} ({unit})")
    ax.set_ylabel(f"sensor {label} ({unit})")
    ax.legend()
    out["Sensor against reference"] = _svg(fig)
    fig = Figure(figsize=(9, 3))
    ax = fig.add_subplot()
    ax.plot(times, ref, lw=1, label="reference", color="k")
    ax.plot(times, raw, lw=0.8, label="raw")
    if has_cal:
        ax.plot(times, cal, lw=0.8, label="calibrated")
    ax.set_ylabel(f"{label} ({unit})")
    ax.legend()
    fig.autofmt_xdate()
    out["Time series"] = _svg(fig)
    if has_cal and np.isfinite(rh).any():
        fig = Figure(figsize=(5, 3.5))
        ax = fig.add_subplot()
        ax.scatter(rh, cal - ref, s=6, alpha=0.5)
        ax.axhline(0, color="k", lw=1)
        ax.set_xlabel("relative humidity (%)")
        ax.set_ylabel(f"calibrated − reference ({unit})")
        out["Residuals against humidity"] = _svg(fig)
    return out


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("civicair.calibration", "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _n
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * float(v):.1f} %"
    return env


def render_html(doc: dict[str, Any], *, history: list[dict[str, Any]] | None = None,
                logout: dict[str, str] | None = None) -> str:
    """The HTML page of a report document (every value escaped by the template engine)."""
    template = _environment().get_template("report.html")
    cal = (doc.get("metrics") or {})
    columns = [(k, v) for k, v in (("raw", cal.get("raw")), ("calibrated", cal.get("calibrated")),
                                   ("out of fold (training)", cal.get("out_of_fold"))) if v]
    return str(template.render(doc=doc, metric_columns=columns, flag_tables=flag_tables(doc.get("flags") or []),
                               plots=plots(doc.get("series"), doc["unit"], doc["quantity_label"]),
                               targets=EPA_TARGET_TEXT, methods=METHOD_TEXT, history=history or [], logout=logout))


def render_station_html(doc: dict[str, Any], report_link: Any = None) -> str:
    return str(_environment().get_template("station.html").render(doc=doc, report_link=report_link))


def json_safe(obj: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
