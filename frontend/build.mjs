// Bundles the public web's scripts and styles into OUT (make web: web/static/dist), nothing else.
// Content-hashed names (served with a year of caching) and manifest.json (entry -> file), which the
// server's asset() helper reads; widget.js keeps a stable name: communes embed its URL.
import * as esbuild from "esbuild";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";

const OUT = process.env.OUT || "dist";
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

const common = { bundle: true, minify: true, sourcemap: false, target: ["es2020"], legalComments: "eof",
                 loader: { ".png": "file", ".svg": "file" }, outdir: OUT, metafile: true, logLevel: "warning",
                 format: "iife" };
const ENTRIES = { "map.js": "src/map.js", "chart.js": "src/chart.js", "site.css": "src/site.css",
                  "zones.js": "src/zones.js" };
const builds = await Promise.all([
  esbuild.build({ ...common, entryNames: "[name]-[hash]", assetNames: "[name]-[hash]",
                  entryPoints: { map: ENTRIES["map.js"], chart: ENTRIES["chart.js"], site: ENTRIES["site.css"],
                                 zones: ENTRIES["zones.js"] } }),
  // a classic script: the element finds civicair's origin in document.currentScript
  esbuild.build({ ...common, entryNames: "[name]", entryPoints: { widget: "src/widget.js" } }),
]);

const manifest = {};
for (const b of builds) {
  for (const [file, meta] of Object.entries(b.metafile.outputs)) {
    const name = basename(file); // every output is flat in OUT (metafile paths are relative to the cwd)
    if (meta.entryPoint) {
      const key = Object.entries({ ...ENTRIES, "widget.js": "src/widget.js" }).find(([, src]) => meta.entryPoint === src);
      if (key) manifest[key[0]] = name;
    } else if (name.endsWith(".css") && meta.cssBundle === undefined) {
      manifest[name.replace(/-[A-Z0-9]{8}\.css$/, ".css")] = name; // the CSS a script entry imports
    }
  }
}
writeFileSync(join(OUT, "manifest.json"), JSON.stringify(manifest, null, 1));
for (const f of readdirSync(OUT).sort()) {
  if (f === "manifest.json") continue;
  const buf = readFileSync(join(OUT, f));
  console.log(`${f.padEnd(30)} ${String(buf.length).padStart(8)} B  gzip ${String(gzipSync(buf, { level: 9 }).length).padStart(7)} B`);
}
