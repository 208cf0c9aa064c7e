// Series chart of a zone, sensor or station page (uPlot): calibrated and raw means, and the
// reference station where there is one. The page renders the same data as a table.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const el = document.getElementById("chart");
const cfg = JSON.parse(el.dataset.config);
const ts = (r) => Date.parse(r.period.datetime_from) / 1000;

async function load(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

Promise.all([load(cfg.seriesUrl), cfg.referenceUrl ? load(cfg.referenceUrl) : null])
  .then(([doc, ref]) => {
    const rows = doc.results;
    const refBy = new Map((ref ? ref.results : []).map((r) => [ts(r), r.value]));
    const xs = [...new Set([...rows.map(ts), ...refBy.keys()])].sort((a, b) => a - b);
    const byX = new Map(rows.map((r) => [ts(r), r]));
    const series = [{}];
    const data = [xs];
    if (cfg.calibrated) {
      series.push({ label: cfg.labels.calibrated, stroke: "#1f5fa8", width: 2 });
      data.push(xs.map((x) => (byX.has(x) ? byX.get(x).calibrated_mean : null)));
    }
    if (cfg.raw) {
      series.push({ label: cfg.labels.raw, stroke: "#6b6b6b", width: 1, dash: [4, 4] });
      data.push(xs.map((x) => (byX.has(x) ? (cfg.raw === "value" ? byX.get(x).value : byX.get(x).raw_mean) : null)));
    }
    if (ref) {
      series.push({ label: cfg.labels.reference, stroke: "#b35900", width: 2 });
      data.push(xs.map((x) => (refBy.has(x) ? refBy.get(x) : null)));
    }
    const width = () => Math.max(280, Math.min(el.clientWidth || 720, 960));
    const plot = new uPlot({ width: width(), height: 280, series, axes: [{}, { label: doc.meta.unit }],
                             scales: { x: { time: true } } }, data, el);
    el.dataset.points = String(rows.length);
    el.dataset.ready = "true";
    window.addEventListener("resize", () => plot.setSize({ width: width(), height: 280 }));
  })
  .catch((err) => { el.dataset.ready = "error"; console.error(err); });
