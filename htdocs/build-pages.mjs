// Assembles the web pages (make web).  partials/layout.html holds what every
// page shares: the <head>, the site header with the navigation, the footer.
// Each htdocs/<page>.html holds only what goes inside <main>, after header
// lines naming its title and its scripts (the values are HTML, used as is):
//
//   <!-- title: Request a certificate -->   <title>, before " · Certificate authority"
//   <!-- script: js/request.js -->          optional, repeatable: <script src=... defer>
//
// A line "<!-- include: NAME -->" in a page is replaced by partials/NAME.html
// (text several pages share, e.g. the import steps).
//
// The navigation link to the page itself gets aria-current="page".
//
// {{root}} (in the layout and the pages) is the prefix of the site's own
// links: empty for the pages (relative links), --root=/ca/ for the error
// documents, which httpd serves under whatever URL failed; {{home}} is the
// home page ("./", or the root).
//
// Usage: node build-pages.mjs OUTDIR [--root=/ca/] PAGE.html...

import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function fail(message) {
  console.error(`build-pages: ${message}`);
  process.exit(1);
}

const layoutFile = join(dirname(fileURLToPath(import.meta.url)), "partials", "layout.html");
const layout = readFileSync(layoutFile, "utf8");
let [outDir, ...pages] = process.argv.slice(2);
let root = "";
if (pages[0] && pages[0].startsWith("--root=")) {
  root = pages.shift().slice(7);
  if (!/^\/([^"<>\s]*\/)?$/.test(root)) fail(`--root=${root}: an absolute path ending in /`);
}
if (!outDir || pages.length === 0) fail("usage: node build-pages.mjs OUTDIR [--root=/ca/] PAGE.html...");

// Replaces the one occurrence of `what` in `text`; a layout without it is an error.
function fill(text, what, by) {
  const at = text.indexOf(what);
  if (at < 0) fail(`${layoutFile}: no ${what.trim()}`);
  return text.slice(0, at) + by + text.slice(at + what.length);
}

for (const file of pages) {
  const name = basename(file);
  let body = readFileSync(file, "utf8");
  const meta = { title: [], script: [] };
  for (let m; (m = /^<!-- (\w+): (.*?) -->\n/.exec(body)); body = body.slice(m[0].length)) {
    if (!(m[1] in meta)) fail(`${file}: unknown header line "${m[1]}:" (title, script)`);
    meta[m[1]].push(m[2]);
  }
  if (meta.title.length !== 1) fail(`${file}: needs exactly one <!-- title: ... --> line`);
  body = body.replace(/^<!-- include: ([\w-]+) -->\n/gm, (_, part) =>
    readFileSync(join(dirname(layoutFile), part + ".html"), "utf8"));

  const self = name === "index.html" ? "{{home}}" : "{{root}}" + name;
  const link = `<li><a href="${self}">`;
  let html = fill(layout, "{{title}}", meta.title[0]);
  html = fill(html, "{{scripts}}\n", meta.script.map((s) => `  <script src="${s}" defer></script>\n`).join(""));
  if (html.includes(link)) html = fill(html, link, `<li><a href="${self}" aria-current="page">`);
  html = fill(html, "{{main}}\n", body);
  html = html.replaceAll("{{home}}", root || "./").replaceAll("{{root}}", root);
  writeFileSync(join(outDir, name), html);
}
