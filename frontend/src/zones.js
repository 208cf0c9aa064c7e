// The privacy zones of a bike sensor on a map (/my-sensor/zones). The form is the truth and works
// without this script: the map draws each row of lat/lon/radius fields as a circle, a click on
// the map fills the "new" row (its circle follows the radius typed), and editing a row redraws it.
// Saving is the form's own POST (CSRF token included); nothing is sent from here.
import L from "leaflet";
import "leaflet/dist/leaflet.css";

const el = document.getElementById("zones-map");
const form = document.getElementById("zones-form");
const cfg = JSON.parse(el.dataset.config);
const help = document.getElementById("map-help");
if (help) help.hidden = false;

const map = L.map(el, { keyboard: true }).setView(cfg.center, cfg.zoom);
map.attributionControl.setPrefix(false);
const note = document.getElementById("map-note");
if (cfg.tilesUrl) { // the base map is optional: the zones and the form work without it
  let failed = 0;
  L.tileLayer(cfg.tilesUrl, { attribution: cfg.tilesAttribution, maxZoom: 19 })
    .on("tileerror", () => { if (failed++ === 0 && note) note.hidden = false; })
    .addTo(map);
}

const circles = new Map(); // row element -> L.Circle
const num = (input) => {
  const v = parseFloat(String(input.value).replace(",", "."));
  return Number.isFinite(v) ? v : null;
};

function draw(row) {
  const [lat, lon, radius] = ["lat", "lon", "radius_m"].map((n) => num(row.querySelector(`input[name="${n}"]`)));
  const removed = row.querySelector('input[name="remove"]');
  const old = circles.get(row);
  if (old) { old.remove(); circles.delete(row); }
  if (lat === null || lon === null || (removed && removed.checked)) return;
  const isNew = row.classList.contains("new");
  const c = L.circle([lat, lon], {
    radius: radius === null ? 200 : radius, color: isNew ? "#a00000" : "#1f3a93", weight: 2,
    fillOpacity: 0.2, dashArray: isNew ? "4 3" : null,
  }).addTo(map);
  c.getElement()?.setAttribute("data-index", row.dataset.index);
  circles.set(row, c);
}

function drawAll() {
  for (const row of form.querySelectorAll("tr.zone")) draw(row);
  el.dataset.zones = String([...circles.values()].length);
}

const fresh = form.querySelector("tr.zone.new");
map.on("click", (e) => {
  if (!fresh) return; // already at the maximum number of zones
  fresh.querySelector("#new-lat").value = e.latlng.lat.toFixed(6);
  fresh.querySelector("#new-lon").value = e.latlng.lng.toFixed(6);
  draw(fresh);
  el.dataset.zones = String(circles.size);
});
form.addEventListener("input", (e) => {
  const row = e.target.closest("tr.zone");
  if (row) { draw(row); el.dataset.zones = String(circles.size); }
});

drawAll();
const drawn = [...circles.values()];
if (drawn.length) map.fitBounds(L.featureGroup(drawn).getBounds(), { maxZoom: 16, padding: [20, 20] });
el.dataset.ready = "true";
