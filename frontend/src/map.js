// The public map: zones and H3 cells coloured by their index band, bike cells, reference stations,
// a 48 h time slider; base-map tiles optional (the page says when they cannot be reached).
// Values and bands come from /v1/map/latest; colours and labels from the scales the server renders.
import L from "leaflet";
import "leaflet/dist/leaflet.css";

const el = document.getElementById("map");
const cfg = JSON.parse(el.dataset.config);
const slider = document.getElementById("hour");
const hourOut = document.getElementById("hour-label");
const note = document.getElementById("map-note");
const bandOf = (b) => (b === 0 ? cfg.noData : cfg.bands[b - 1]);

const map = L.map(el, { zoomSnap: 0.5, keyboard: true }).setView(cfg.center, cfg.zoom);
map.attributionControl.setPrefix(false);
if (cfg.tilesUrl) {
  let failed = 0;
  L.tileLayer(cfg.tilesUrl, { attribution: cfg.tilesAttribution, maxZoom: 19 })
    .on("tileerror", () => { if (failed++ === 0 && note) note.hidden = false; })
    .addTo(map);
}
map.attributionControl.addAttribution(cfg.dataAttribution);

let hour = 0;
let times = [];
const layers = {};

function style(f) {
  const p = f.properties;
  const kind = p.kind;
  return {
    fillColor: bandOf(p.bands[hour]).colour,
    fillOpacity: kind === "admin" ? 0.55 : 0.8,
    color: kind === "bike" ? "#1f3a93" : "#333333",
    weight: kind === "admin" ? 1.5 : (kind === "bike" ? 1.2 : 0.8),
    dashArray: kind === "bike" ? "3 2" : null,
    radius: 8,
  };
}

function label(f) {
  const p = f.properties;
  const v = p.values[hour];
  const info = bandOf(p.bands[hour]);
  const what = p.kind === "bike" ? cfg.messages.bike : (p.kind === "station" ? cfg.messages.station : "");
  return `${what}${p.name}: ${v === null ? info.label : `${v} ${cfg.unit} (${info.label})`}`;
}

function showHour() {
  if (hourOut && times.length) {
    hourOut.textContent = new Date(times[hour]).toLocaleString(cfg.lang, { dateStyle: "medium", timeStyle: "short" });
  }
  if (slider) slider.setAttribute("aria-valuetext", hourOut ? hourOut.textContent : String(hour));
  for (const layer of Object.values(layers)) {
    layer.setStyle(style);
    layer.eachLayer((l) => l.setTooltipContent(label(l.feature)));
  }
  el.dataset.hour = String(hour);
}

function addLayer(name, fc) {
  const layer = L.geoJSON(fc, {
    style,
    pointToLayer: (f, latlng) => L.circleMarker(latlng, style(f)),
    onEachFeature: (f, l) => {
      l.bindTooltip(label(f), { sticky: true });
      if (f.properties.url) l.on("click", () => { window.location.href = f.properties.url; });
    },
  });
  layers[name] = layer;
  const box = document.getElementById(`layer-${name}`);
  if (!box || box.checked) layer.addTo(map);
  if (box) box.addEventListener("change", () => (box.checked ? layer.addTo(map) : layer.remove()));
  layer.eachLayer((l) => {
    const p = l.getElement && l.getElement();
    if (p) { p.dataset.id = l.feature.properties.id; p.dataset.kind = l.feature.properties.kind; }
  });
  return layer;
}

fetch(cfg.dataUrl, { credentials: "same-origin" })
  .then((r) => { if (!r.ok) throw new Error(`${r.status}`); return r.json(); })
  .then((doc) => {
    times = doc.meta.hours;
    hour = times.length - 1;
    // start on the latest hour with a published value anywhere
    const all = [...doc.zones.features, ...doc.bike.features];
    while (hour > 0 && !all.some((f) => f.properties.values[hour] !== null)) hour--;
    if (slider) { slider.max = String(times.length - 1); slider.value = String(hour); slider.disabled = false; }
    const zones = addLayer("zones", doc.zones);
    addLayer("bike", doc.bike);
    addLayer("stations", doc.stations);
    if (zones.getLayers().length) map.fitBounds(zones.getBounds(), { padding: [10, 10] });
    showHour();
    el.dataset.ready = "true";
  })
  .catch((err) => {
    if (note) { note.textContent = cfg.messages.dataError; note.hidden = false; }
    el.dataset.ready = "error";
    console.error(err);
  });

if (slider) slider.addEventListener("input", () => { hour = Number(slider.value); showHour(); });
// the quantity and scale selects reload the page (the form also works without this script)
for (const id of ["quantity", "scale"]) {
  const s = document.getElementById(id);
  if (s) s.addEventListener("change", () => s.form.submit());
}
