// <civicair-air zone="67482" [quantity="pm25"] [scale="eaqi|atmo"] [lang="fr|en"] [api="https://…"]>:
// a zone's current index and its last 24 hours, for a commune's web site. No dependency, no cookie
// (fetch without credentials), styles in a shadow root. Values, bands and colours come from
// civicair's /v1/zones/{zone}/index: this script computes no band itself.
const SCRIPT_ORIGIN = document.currentScript ? new URL(document.currentScript.src).origin : window.location.origin;
const QUANTITY = { pm25: "PM2.5", pm10: "PM10", no2: "NO₂", o3: "O₃" };
const TEXT = {
  en: { title: "Air quality", last24: "last 24 hours", none: "No published value in the last 24 hours",
        source: "Citizen sensor data, not produced by the city or the air-quality agency", more: "Details and data",
        error: "Air-quality data could not be loaded" },
  fr: { title: "Qualité de l'air", last24: "dernières 24 heures", none: "Pas de valeur publiée ces dernières 24 heures",
        source: "Données de capteurs citoyens, non produites par la ville ni par l'association de surveillance de la qualité de l'air",
        more: "Détails et données", error: "Les données de qualité de l'air n'ont pas pu être chargées" },
};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

class CivicairAir extends HTMLElement {
  static get observedAttributes() { return ["zone", "quantity", "scale", "lang", "api"]; }

  connectedCallback() { this.render(); }

  attributeChangedCallback() { if (this.isConnected) this.render(); }

  async render() {
    const zone = this.getAttribute("zone") || "";
    const quantity = this.getAttribute("quantity") || "pm25";
    const scale = this.getAttribute("scale") || "eaqi";
    const lang = (this.getAttribute("lang") || document.documentElement.lang || "en").slice(0, 2) === "fr" ? "fr" : "en";
    const api = (this.getAttribute("api") || SCRIPT_ORIGIN).replace(/\/$/, "");
    const t = TEXT[lang];
    const root = this.shadowRoot || this.attachShadow({ mode: "open" });
    const page = `${api}/zones/${encodeURIComponent(zone)}?lang=${lang}`;
    let doc = null;
    try {
      const r = await fetch(`${api}/v1/zones/${encodeURIComponent(zone)}/index?quantity=${encodeURIComponent(quantity)}&scale=${encodeURIComponent(scale)}`,
                            { credentials: "omit" });
      if (r.ok) doc = (await r.json()).results[0];
    } catch (err) {
      doc = null;
    }
    const q = QUANTITY[quantity] || quantity;
    let body;
    if (!doc) {
      body = `<p>${t.error}.</p>`;
      this.dataset.band = "";
    } else {
      const c = doc.current;
      const w = 240, h = 40, bw = w / doc.hours.length;
      const top = Math.max(1, ...doc.hours.map((x) => x.value || 0));
      const bars = doc.hours.map((x, i) => {
        const hh = x.value === null ? 2 : Math.max(2, (x.value / top) * h);
        const when = new Date(x.datetime_from).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
        return `<rect x="${(i * bw).toFixed(1)}" y="${(h - hh).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${hh.toFixed(1)}" fill="${esc(x.colour)}"><title>${esc(when)}: ${x.value === null ? "–" : esc(x.value)}</title></rect>`;
      }).join("");
      const when = c ? new Date(c.datetime_from).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) : "";
      body = `<p>${c ? `<span class="badge" style="background:${esc(c.colour)};color:${esc(c.text)}">${esc(c.label[lang])}</span> ${esc(c.value)} ${esc(doc.unit)} ${esc(q)} <small>(${esc(when)})</small>` : esc(t.none)}</p>
      <svg role="img" aria-label="${esc(q)}, ${esc(t.last24)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${bars}</svg>
      <p><small>${esc(doc.scale_name[lang])}</small></p>`;
      this.dataset.band = String(c ? c.band : 0);
    }
    const name = doc ? doc.name : zone;
    root.innerHTML = `<style>
      :host{display:block;font:14px/1.4 system-ui,sans-serif;color:#1a1a1a;max-width:300px}
      .card{border:1px solid #767676;border-radius:6px;padding:10px;background:#fff}
      .badge{display:inline-block;padding:1px 8px;border-radius:4px;font-weight:600}
      h2{font-size:15px;margin:0 0 6px} p{margin:4px 0} small{color:#3d3d3d} a{color:#0b57a3}
    </style>
    <div class="card" part="card">
      <h2>${esc(t.title)} — ${esc(name)}</h2>
      ${body}
      <p><small>${esc(t.source)}. <a href="${esc(page)}" target="_blank" rel="noopener">civicair — ${esc(t.more)}</a></small></p>
    </div>`;
    this.dataset.ready = "true";
  }
}

if (!customElements.get("civicair-air")) customElements.define("civicair-air", CivicairAir);
