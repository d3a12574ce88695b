// Builds the selfhelp page's browser libraries into ../static/vendor/
// (run by `make selfhelp-assets`, after `npm ci` here; docs/selfhelp.md).
//
//   xmpp-<version>.min.js   @xmpp/client's own browser bundle (dist/), copied
//   sip-<version>.min.js    SIP.js, which ships ES modules only: bundled by
//                           esbuild into one script defining the global SIP
//   *.LICENSE.txt           the licence of every npm package in each file
//
// The output depends only on the pinned packages (package-lock.json), so a
// rebuild of the same versions gives the same bytes.
import { build } from "esbuild";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const out = join(here, "..", "static", "vendor");

const manifest = (name) => JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8"));

// A package and what it depends on, less what its "browser" field leaves out.
function closure(name, seen = new Map()) {
  if (seen.has(name)) return seen;
  const pkg = manifest(name);
  seen.set(name, pkg);
  const excluded = pkg.browser && typeof pkg.browser === "object" ? pkg.browser : {};
  for (const dep of Object.keys(pkg.dependencies || {})) {
    if (excluded[dep] !== false) closure(dep, seen);
  }
  return seen;
}

function licenceText(name, pkg) {
  const dir = join(modules, name);
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const body = file ? readFileSync(join(dir, file), "utf8").trim()
    : `${pkg.license} (the package's own declaration; it ships no licence file)`;
  return `${name} ${pkg.version} (${pkg.license || "see below"})\n${"-".repeat(60)}\n${body}\n`;
}

function licences(root, bundledAs) {
  const parts = [...closure(root).entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([name, pkg]) => licenceText(name, pkg));
  return `Licences of the npm packages in ${bundledAs}\n(built from ${root}; apps/selfhelp/assets)\n\n`
    + parts.join("\n");
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const xmpp = manifest("@xmpp/client");
const xmppFile = `xmpp-${xmpp.version}.min.js`;
const dist = join(modules, "@xmpp/client/dist/xmpp.min.js");
if (!existsSync(dist)) throw new Error("@xmpp/client has no dist/xmpp.min.js");
// without its sourceMappingURL line: the map is not shipped
writeFileSync(join(out, xmppFile),
  readFileSync(dist, "utf8").replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "") + "\n");
writeFileSync(join(out, `${xmppFile}.LICENSE.txt`), licences("@xmpp/client", xmppFile));

const sip = manifest("sip.js");
const sipFile = `sip-${sip.version}.min.js`;
await build({
  stdin: { contents: 'export * from "sip.js";', resolveDir: here, loader: "js" },
  bundle: true, minify: true, format: "iife", globalName: "SIP", target: "es2020",
  legalComments: "none", outfile: join(out, sipFile), logLevel: "warning",
});
writeFileSync(join(out, `${sipFile}.LICENSE.txt`), licences("sip.js", sipFile));
console.log(`built ${xmppFile} and ${sipFile} in ${out}`);
