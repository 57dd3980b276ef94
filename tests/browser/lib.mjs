// Shared by the browser tests (webpages.mjs, badpaths.mjs): Debian's
// chromium through playwright-core, axe-core on every page state, checks
// of keyboard use and of a 390 px wide screen.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

export const ARGS = ["--headless", "--no-sandbox", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-gpu"];

const require = createRequire(import.meta.url);
// axe-core from npm (pinned in package-lock.json), injected with
// page.evaluate: the pages' Content-Security-Policy stays in force.
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export function log(...a) { console.log("[browser]", ...a); }

// A fresh browser profile for every context; every request is checked to go
// to the server itself, and CSP violations or script errors are collected
// in result.problems; failed favicon loads in result.favicon_errors.
export function opener(result, origin, contexts) {
  return async function open(name, options) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certauth-chromium-"));
    const ctx = await chromium.launchPersistentContext(dir, {
      executablePath: "/usr/bin/chromium", headless: true, args: ARGS,
      acceptDownloads: true, viewport: { width: 1100, height: 900 }, ...options,
    });
    contexts.push({ ctx, dir });
    ctx.on("request", (req) => {
      const u = req.url();
      if (u.startsWith("blob:") || u.startsWith("data:")) return;
      if (new URL(u).origin !== origin) result.problems.push(`${name}: request to another site: ${u}`);
    });
    ctx.on("response", (res) => {
      if (/favicon/.test(res.url()) && res.status() >= 400) {
        (result.favicon_errors ||= []).push(`${name}: ${res.status()} ${res.url()}`);
      }
    });
    const watch = (page) => {
      page.on("console", (m) => {
        if (m.type() === "error" && !/status of (40[1349]|50[03])/.test(m.text())) {
          result.problems.push(`${name}: console error on ${page.url()}: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => result.problems.push(`${name}: script error on ${page.url()}: ${e.message}`));
    };
    ctx.on("page", watch);
    for (const p of ctx.pages()) watch(p);
    return ctx;
  };
}

export async function firstPage(ctx) {
  return ctx.pages()[0] || ctx.newPage();
}

// axe-core on the page as it is now; the violations (id, impact, help,
// first nodes) are recorded under result.axe[state].
export async function axe(page, result, state) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.evaluate(AXE + "\n;0");
  }
  const v = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((x) => ({
      id: x.id, impact: x.impact, help: x.help,
      nodes: x.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  });
  (result.axe ||= {})[state] = v;
  if (v.length) log("axe", state, JSON.stringify(v));
  return v;
}

// A screenshot and axe-core for one state of a page.
export async function state(page, result, out, name) {
  await page.screenshot({ path: path.join(out, name + ".png"), fullPage: true });
  return axe(page, result, name);
}

// Keyboard only: from the top of the page, Tab reaches every one of the
// selectors (the page's main controls).  Returns the ones never reached.
export async function tabReaches(page, selectors, maxTabs = 80) {
  await page.evaluate(() => {
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    window.scrollTo(0, 0);
  });
  const missing = new Set(selectors);
  for (let i = 0; i < maxTabs && missing.size; i++) {
    await page.keyboard.press("Tab");
    const hit = await page.evaluate((sels) => sels.filter((s) => {
      const a = document.activeElement;
      return a && a !== document.body && a.matches(s);
    }), [...missing]);
    for (const s of hit) missing.delete(s);
  }
  return [...missing];
}

// How many pixels the page is wider than a 390 px phone screen (0: none).
export async function phoneOverflow(page) {
  const old = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100);
  const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.setViewportSize(old);
  return over;
}
