// Copies the wall page's front-end libraries from node_modules (installed from the npm registry,
// pinned by package-lock.json) into the Python package, so that `pip install` ships them and the
// page never needs a CDN. Writes MANIFEST.json (package, version, sha256 of every file) which a
// test checks against the files and the lock. Run: npm ci && npm run build
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "citywall", "web", "static", "vendor");
const modules = join(here, "node_modules");

// package -> [target folder, files to copy (relative to the package)]
const font = "@fontsource-variable/noto-sans-kr";
const fontFiles = readdirSync(join(modules, font, "files")).filter((f) => f.endsWith("-wght-normal.woff2")).sort();
const plan = {
  "maplibre-gl": ["maplibre-gl", ["dist/maplibre-gl.mjs", "dist/maplibre-gl-worker.mjs", "dist/maplibre-gl.css", "LICENSE.txt"]],
  echarts: ["echarts", ["dist/echarts.esm.min.mjs", "LICENSE", "NOTICE"]],
  [font]: ["noto-sans-kr", ["index.css", "LICENSE", ...fontFiles.map((f) => `files/${f}`)]],
};

rmSync(out, { recursive: true, force: true });
const manifest = {};
for (const [pkg, [folder, files]] of Object.entries(plan)) {
  const version = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
  const hashes = {};
  for (const file of files) {
    const target = join(out, folder, file.replace(/^dist\//, ""));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(modules, pkg, file), target);
    // The source maps are not shipped: drop the comment that points at them.
    if (file.endsWith(".mjs")) {
      const text = readFileSync(target, "utf8").replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
      writeFileSync(target, text);
    }
    hashes[file.replace(/^dist\//, "")] = createHash("sha256").update(readFileSync(target)).digest("hex");
  }
  manifest[pkg] = { version, folder, files: hashes };
}
writeFileSync(join(out, "MANIFEST.json"), JSON.stringify(manifest, null, 1) + "\n");
console.log(`copied ${Object.values(manifest).reduce((n, m) => n + Object.keys(m.files).length, 0)} files into ${out}`);
