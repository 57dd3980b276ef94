// Browser test of the bad paths through the web pages (issue 16), run by
// tests/integration/test_browser.py::test_browser_bad_paths against a real
// apache2 with mod_certauth, the shipped web-page lines of
// conf/example-vhost.conf (error documents included) and a Location whose
// default profile allows 2 valid certificates (20 days), plus a profile
// "long" (365 days: outside the 30-day renewal window).
//
// Environment: as webpages.mjs (CERTAUTH_URL, CERTAUTH_USERS, CERTAUTH_OUT,
// CERTAUTH_P12_PASS).  Each check is recorded in result.checks (name -> ok,
// detail) and the run goes on after a failed one, so that one run shows
// every finding; XFAIL lists checks known to fail and why.  Every state gets
// a screenshot (bp-*.png) and an axe-core run (result.axe).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { axe, firstPage, log, opener, phoneOverflow, state, tabReaches } from "./lib.mjs";

const BASE = process.env.CERTAUTH_URL;
const USERS = JSON.parse(process.env.CERTAUTH_USERS);
const OUT = process.env.CERTAUTH_OUT;
const PASS = process.env.CERTAUTH_P12_PASS;
const CA = BASE + "/ca/";
const ORIGIN = new URL(BASE).origin;
const result = { problems: [], checks: {}, files: {} };
const contexts = [];
const open = opener(result, ORIGIN, contexts);
fs.mkdirSync(OUT, { recursive: true });

// Checks known to fail, with the reason (none now: the identity model of
// issue 12 lets the login continue next to a revoked client certificate).
const XFAIL = {};

function check(name, ok, detail) {
  result.checks[name] = { ok: !!ok, detail: detail === undefined ? "" : String(detail) };
  log(ok ? "ok  " : (XFAIL[name] ? "xfail" : "FAIL"), name, ok ? "" : detail);
}

// One section of the walk: an exception fails that section's check only.
async function section(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name + ":completed", false, e && e.stack ? e.stack : e);
  }
}

// axe, a screenshot, 390 px and the keyboard for one state.
async function everything(page, name, controls) {
  const v = await state(page, result, OUT, "bp-" + name);
  check(name + ":axe", v.length === 0, JSON.stringify(v));
  const over = await phoneOverflow(page);
  check(name + ":390px", over <= 0, over + " px too wide at 390 px");
  if (controls) {
    const missing = await tabReaches(page, controls);
    check(name + ":keyboard", missing.length === 0, "Tab never reaches " + missing.join(", "));
  }
}

async function errorPage(page, name, status, res, words) {
  check(name + ":status", res && res.status() === status, res && res.status());
  const lang = await page.getAttribute("html", "lang");
  check(name + ":lang", lang === "en", lang);
  const h1 = await page.locator("main h1").count();
  check(name + ":layout", h1 === 1 && (await page.locator("header.site nav").count()) === 1 &&
    (await page.locator("link[rel=stylesheet]").count()) === 1 &&
    (await page.evaluate(() => getComputedStyle(document.querySelector("header.site")).backgroundColor)) !== "rgba(0, 0, 0, 0)",
  "no h1, navigation or style sheet");
  const text = (await page.textContent("main")).replace(/\s+/g, " ");
  for (const w of words) check(name + ":says " + w, new RegExp(w, "i").test(text), text);
  const home = await page.locator("main a[href='/ca/']").count();
  check(name + ":home link", home >= 1, "no link to /ca/ in main");
}

async function passwordRule(page) {
  return (await page.textContent("[data-password-rule]")).replace(/\s+/g, " ").trim();
}

async function main() {
  // --- error documents: nobody logged in -----------------------------------
  const anon = await open("anonymous", {});
  let page = await firstPage(anon);
  // the login cancelled (no credentials): Playwright's Chromium cannot show
  // a cancelled dialog's page (net::ERR_INVALID_AUTH_CREDENTIALS), so the
  // body is fetched; the page itself is walked with a wrong password below
  await section("error-401-cancelled", async () => {
    const r = await page.request.get(CA + "mycerts.html");
    const body = await r.text();
    check("error-401-cancelled:status", r.status() === 401, r.status());
    check("error-401-cancelled:the site's page", /<html lang="en">/.test(body) && /id="try-again"/.test(body), body.slice(0, 200));
  });
  await section("error-404", async () => {
    const res = await page.goto(CA + "no-such-page.html");
    await errorPage(page, "error-404", 404, res, ["not found", "address"]);
    await everything(page, "error-404", ["main a[href='/ca/']"]);
  });
  await section("error-403", async () => {
    // a page "Require all denied" (in the pytest file's configuration)
    const res = await page.goto(CA + "forbidden.html");
    await errorPage(page, "error-403", 403, res, ["not allowed|forbidden"]);
    await everything(page, "error-403");
  });
  for (const code of [500, 503]) {
    await section("error-" + code, async () => {
      const res = await page.goto(CA + "error/" + code + ".html");
      check(`error-${code}:exists`, res.status() === 200, res.status());
      await errorPage(page, "error-" + code, 200, res, ["try again|later"]);
      await everything(page, "error-" + code);
    });
  }

  // a wrong password: the site's 401 page, with what to do
  await section("error-401", async () => {
    const wrong = await open("wrong-password", { httpCredentials: { username: "alice", password: "not-" + USERS.alice } });
    const p = await firstPage(wrong);
    const res = await p.goto(CA + "request.html");
    await errorPage(p, "error-401", 401, res, ["log ?in", "user name and a password", "certificate"]);
    const again = p.locator("main a#try-again");
    check("error-401:try again link", (await again.count()) === 1, "no #try-again link");
    await everything(p, "error-401", ["main a#try-again", "main a[href='/ca/']"]);
  });

  // --- alice with the site login ----------------------------------------------
  const alice = await open("alice", { httpCredentials: { username: "alice", password: USERS.alice } });
  page = await firstPage(alice);

  // one password rule, with the same words on every page and in the server
  let ruleText = "";
  await section("password-rule", async () => {
    const doc = await (await page.request.get(CA + "api/certs?limit=1")).json();
    const rule = doc.password_rule;
    check("password-rule:published", rule && typeof rule.text === "string" && rule.min_length >= 10, JSON.stringify(rule));
    ruleText = rule ? rule.text.replace(/\s+/g, " ").trim() : "";
    await page.goto(CA + "request.html");
    await page.waitForFunction(() => /\S/.test(document.querySelector("[data-password-rule]")?.textContent || ""));
    check("password-rule:request page shows it", (await passwordRule(page)) === ruleText, await passwordRule(page));
    // what the request page refuses (the same words as the server's)
    const refusals = {};
    for (const pw of ["Password123", "Abcdefghij", "aaaaaaaaaaaaaaaa", "xx-alice-xx-2026"]) {
      await page.fill("#password", pw);
      await page.fill("#password2", pw);
      await page.click("#request-button");
      refusals[pw] = (await page.textContent("#request-status")).trim();
      check(`password-rule:request refuses ${pw}`, /error/.test(await page.getAttribute("#request-status", "class")), refusals[pw]);
    }
    await page.goto(CA + "pkcs12.html");
    await page.waitForFunction(() => /\S/.test(document.querySelector("[data-password-rule]")?.textContent || ""));
    check("password-rule:pkcs12 page shows it", (await passwordRule(page)) === ruleText, await passwordRule(page));
    for (const [pw, said] of Object.entries(refusals)) {
      await page.fill("#fb-password", pw);
      await page.fill("#fb-password2", pw);
      await page.click("#pkcs12-button");
      const got = (await page.textContent("#pkcs12-status")).trim();
      check(`password-rule:pkcs12 page refuses ${pw} in the same words`, got === said, got + " vs " + said);
      // and the server itself refuses it, in the same words
      const r = await page.request.post(CA + "pkcs12", {
        headers: { "Content-Type": "application/json", "X-Requested-With": "XMLHttpRequest" },
        data: JSON.stringify({ password: pw }),
      });
      const body = await r.text();
      check(`password-rule:server refuses ${pw}`, r.status() === 400 && body.includes(said), r.status() + " " + body);
    }
    await everything(page, "pkcs12-refused", ["#fb-password", "#fb-password2", "#fb-key-type", "#pkcs12-button"]);
  });

  // the quota before the form, and submit once
  let ecSerial = null;
  await section("quota", async () => {
    await page.goto(CA + "request.html");
    await page.waitForFunction(() => /\d+ of \d+/.test(document.querySelector("#quota")?.textContent || ""), null, { timeout: 15000 });
    const q = await page.textContent("#quota");
    check("quota:shown before the form", /You have 0 of 2 valid certificates/.test(q), q);
    check("quota:links My certificates", (await page.locator("#quota a[href='mycerts.html']").count()) === 1, q);
    await everything(page, "request-quota", ["#password", "#password2", "#key-type", "#request-button", "#quota a"]);
    await page.fill("#password", PASS);
    await page.fill("#password2", PASS);
    let posts = 0;
    page.on("request", (r) => { if (r.method() === "POST" && /\/ca\/enroll/.test(r.url())) posts++; });
    await page.click("#request-button");
    await page.waitForSelector("#request-download:not([hidden]) a, #request-status.error", { timeout: 60000 });
    const st = await page.textContent("#request-status");
    ecSerial = (/certificate ([0-9A-F]+)/.exec(st) || [])[1];
    check("quota:first request works", !!ecSerial, st);
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#request-download a")]);
    result.files.ec = path.join(OUT, "bp-ec.p12");
    await dl.saveAs(result.files.ec);
    result.files.ec_name = dl.suggestedFilename();
    // a second click (or Enter) does not send another request
    await page.locator("#request-button").click({ force: true, timeout: 2000 }).catch(() => {});
    await page.keyboard.press("Enter");
    await page.waitForTimeout(1500);
    check("quota:submit once", posts === 1, posts + " POST enroll");
    const q2 = await page.textContent("#quota");
    check("quota:updated after success", /You have 1 of 2 valid certificates/.test(q2), q2);
    await everything(page, "request-done");
  });

  // the server-made page on par with the request page
  await section("pkcs12-page", async () => {
    await page.goto(CA + "pkcs12.html");
    await page.waitForFunction(() => /Signed in as alice/.test(document.querySelector("#who")?.textContent || ""), null, { timeout: 15000 })
      .catch(() => {});
    check("pkcs12-page:signed in line", /Signed in as alice/.test(await page.textContent("#who").catch(() => "")), "");
    const q = await page.textContent("#quota").catch(() => "");
    check("pkcs12-page:quota", /You have 1 of 2 valid certificates/.test(q), q);
    await page.fill("#fb-password", PASS);
    await page.fill("#fb-password2", PASS);
    await page.click("#pkcs12-button");
    await page.waitForSelector("#pkcs12-download:not([hidden]) a, #pkcs12-status.error", { timeout: 60000 });
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#pkcs12-download a")]);
    result.files.server = path.join(OUT, "bp-server.p12");
    await dl.saveAs(result.files.server);
    result.files.server_name = dl.suggestedFilename();
    check("pkcs12-page:file name", /^alice-[0-9A-F]{8}\.p12$/.test(dl.suggestedFilename()), dl.suggestedFilename());
    check("pkcs12-page:import steps", await page.isVisible("#after"), "no import steps after success");
    check("pkcs12-page:submit once", await page.isDisabled("#pkcs12-button").catch(() => true), "button enabled again");
    await everything(page, "pkcs12-done");
  });

  // the limit reached: said before a key is made, the form closed
  await section("quota-full", async () => {
    await page.goto(CA + "request.html");
    await page.waitForFunction(() => /\d+ of \d+/.test(document.querySelector("#quota")?.textContent || ""), null, { timeout: 15000 });
    const q = await page.textContent("#quota");
    check("quota-full:said first", /You have 2 of 2 valid certificates/.test(q) && /revoke/i.test(q), q);
    check("quota-full:form closed", await page.isDisabled("#request-button"), "the button still works");
    await everything(page, "request-quota-full", ["#quota a"]);
  });

  // a certificate of the profile "long" (365 days): renewal opens later
  await section("long", async () => {
    await page.goto(CA + "request.html");
    await page.click("summary");
    await page.fill("#profile", "long");
    // the limit is per profile: this one has none
    await page.waitForFunction(() => !document.querySelector("#request-button").disabled, null, { timeout: 15000 });
    await page.fill("#password", PASS);
    await page.fill("#password2", PASS);
    await page.click("#request-button");
    await page.waitForSelector("#request-download:not([hidden]) a, #request-status.error", { timeout: 60000 });
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#request-download a")]);
    result.files.long = path.join(OUT, "bp-long.p12");
    await dl.saveAs(result.files.long);
  });

  // --- My certificates with the certificate of profile "long" ----------------
  await section("renew-window", async () => {
    const holder = await open("long-holder", {
      clientCertificates: [{ origin: ORIGIN, pfxPath: result.files.long, passphrase: PASS }],
    });
    const p = await firstPage(holder);
    await p.goto(CA + "mycerts.html");
    await p.waitForSelector("#mine tbody tr[data-serial]", { timeout: 15000 });
    const row = p.locator("#mine tr.presented");
    check("renew-window:no Renew before the window", (await row.locator("button", { hasText: "Renew" }).count()) === 0,
      "Renew offered for a 365-day certificate");
    const txt = await row.textContent().catch(() => "");
    check("renew-window:says when", /Renewal opens on \d{4}-\d{2}-\d{2}/.test(txt), txt);
    check("renew-window:no empty renew form", await p.isHidden("#renew"), "");
    const sect = (await p.isVisible("#renew-section")) ? (await p.innerText("#renew-section")).trim() : "";
    check("renew-window:no empty Renew heading", sect !== "Renew", JSON.stringify(sect));
    await everything(p, "mycerts-renew-later", ["#mine tr.presented button.danger"]);
  });

  // --- My certificates with the 20-day certificate: renew, then revoke it ------
  await section("renew-then-revoke", async () => {
    const holder = await open("ec-holder", {
      clientCertificates: [{ origin: ORIGIN, pfxPath: result.files.ec, passphrase: PASS }],
    });
    const p = await firstPage(holder);
    await p.goto(CA + "mycerts.html");
    const sel = `#mine tr[data-serial="${ecSerial}"]`;
    await p.waitForSelector(sel + " button.secondary", { timeout: 15000 });
    await p.click(sel + " button.secondary");
    // the renew form applies the same rule (with the login)
    await p.waitForFunction(() => /\S/.test(document.querySelector("#renew [data-password-rule]")?.textContent || ""));
    const renewRule = (await p.textContent("#renew [data-password-rule]")).replace(/\s+/g, " ").trim();
    check("renew:shows the rule", renewRule === ruleText, renewRule);
    for (const pw of ["Password123", "xx-alice-xx-2026"]) {
      await p.fill("#renew-password", pw);
      await p.fill("#renew-password2", pw);
      await p.click("#renew-button");
      const s = await p.textContent("#renew-status");
      check(`renew:refuses ${pw}`, /error/.test(await p.getAttribute("#renew-status", "class")), s);
    }
    await everything(p, "mycerts-renew-form", ["#renew-password", "#renew-password2", "#renew-key-type", "#renew-button"]);
    // revoke it, with the reason "no longer needed"
    await p.click(sel + " button.danger");
    await p.selectOption("#revoke-reason", "cessationOfOperation");
    await everything(p, "revoke-dialog", ["#revoke-reason", "#revoke-confirm", "#revoke-cancel"]);
    await p.click("#revoke-confirm");
    await p.waitForFunction((s) => document.querySelector(s + " .badge")?.textContent === "revoked", sel);
    check("revoke:old renew form cleared", await p.isHidden("#renew"), "the renew form stays");
    check("revoke:renew status cleared", !(await p.textContent("#renew-status")).trim(), await p.textContent("#renew-status"));
    const rowText = await p.textContent(sel);
    check("revoke:reason in words", /no longer needed/.test(rowText) && !/cessationOfOperation/.test(rowText), rowText);
    check("revoke:date shown", /revoked on \d{4}-\d{2}-\d{2}/.test(rowText), rowText);
    await everything(p, "mycerts-after-revoke");
  });

  // --- the revoked certificate still in the browser, with the login ------------
  await section("revoked-in-browser", async () => {
    const stuck = await open("revoked-holder", {
      clientCertificates: [{ origin: ORIGIN, pfxPath: result.files.ec, passphrase: PASS }],
      httpCredentials: { username: "alice", password: USERS.alice },
    });
    const p = await firstPage(stuck);
    const res = await p.goto(CA + "mycerts.html");
    if (res.status() === 200) {
      await p.waitForFunction(() => !/Loading/.test(document.querySelector("#list-status").textContent), null, { timeout: 15000 });
      const msg = (await p.textContent("main")).replace(/\s+/g, " ");
      check("revoked-in-browser:says what and what to do",
        new RegExp(`your browser presents certificate ${ecSerial}, which is revoked; remove it from the browser, or continue with your login`, "i").test(msg), msg);
      const sect = (await p.isVisible("#renew-section")) ? (await p.innerText("#renew-section")).trim() : "";
      check("revoked-in-browser:no empty renew heading", sect !== "Renew", JSON.stringify(sect));
      await everything(p, "mycerts-revoked-in-browser");
      const listed = await p.locator("#mine tbody tr[data-serial]").count();
      // with the login, the list still loads (issue 12's identity model)
      check("revoked-cert-login-continues", listed > 0, "the list did not load: " + msg);
    } else {
      check("revoked-in-browser:says what and what to do", false, "status " + res.status());
      check("revoked-cert-login-continues", false, "status " + res.status());
    }
  });

  // --- a failed load ---------------------------------------------------------------
  await section("failed-load", async () => {
    const p = await alice.newPage();
    await p.route("**/api/certs*", (r) => r.fulfill({ status: 503, contentType: "application/json",
      body: JSON.stringify({ error: "database unavailable", detail: "try again later" }) }));
    await p.goto(CA + "mycerts.html");
    await p.waitForSelector("#list-status.error");
    check("failed-load:no empty Renew heading", await p.isHidden("#renew-section"), "the Renew heading stays");
    await everything(p, "mycerts-failed-load");
    await p.close();
  });

  // --- bob has none ---------------------------------------------------------------------
  await section("empty", async () => {
    const bob = await open("bob", { httpCredentials: { username: "bob", password: USERS.bob } });
    const p = await firstPage(bob);
    await p.goto(CA + "mycerts.html");
    await p.waitForSelector("#mine tbody td");
    const span = await p.getAttribute("#mine tbody td", "colspan");
    const cols = await p.locator("#mine thead th").count();
    check("empty:colspan", Number(span) === cols, `colspan ${span}, ${cols} columns`);
    await everything(p, "mycerts-empty", ["a[href='request.html']"]);
  });

  // --- an administrator ---------------------------------------------------------------
  await section("admin", async () => {
    const admin = await open("admin", { httpCredentials: { username: "admin", password: USERS.admin } });
    const p = await firstPage(admin);
    await p.goto(CA + "mycerts.html");
    await p.waitForSelector("#admin:not([hidden])");
    await p.waitForFunction(() => /\S/.test(document.querySelector("#pending-status").textContent));
    const pend = (await p.textContent("#pending tbody")).trim();
    check("admin:empty approvals say so", /No requests are waiting/.test(pend), JSON.stringify(pend));
    // search twice: the status filter keeps working and the count shows
    await p.fill("#search-owner", "alice");
    await p.click("#search-form button[type=submit]");
    await p.waitForFunction(() => /found/.test(document.querySelector("#search-count")?.textContent || ""), null, { timeout: 10000 });
    const first = await p.textContent("#search-count");
    check("admin:count shown", /^\d+ found/.test(first.trim()), first);
    check("admin:status options kept", (await p.locator("#search-status option").count()) === 4,
      await p.locator("#search-status option").count());
    await p.selectOption("#search-status", "revoked");
    await p.click("#search-form button[type=submit]");
    await p.waitForFunction((f) => {
      const t = document.querySelector("#search-count").textContent.trim();
      return /^\d+ found/.test(t) && t !== f.trim();
    }, first, { timeout: 10000 });
    const badges = await p.locator("#search-results tbody .badge").allTextContents();
    check("admin:second search filters by status", badges.length === 1 && badges.every((b) => b === "revoked"), badges.join(","));
    await p.selectOption("#search-status", "");
    await p.click("#search-form button[type=submit]");
    await p.waitForFunction(() => document.querySelectorAll("#search-results tbody tr[data-serial]").length >= 3);
    // revoke one of alice's: the confirmation appears at its row
    const row = p.locator("#search-results tbody tr[data-serial]", { has: p.locator("button.danger") }).first();
    const serial = await row.getAttribute("data-serial");
    await row.locator("button.danger").click();
    await p.click("#revoke-confirm");
    const sel = `#search-results tr[data-serial="${serial}"]`;
    await p.waitForFunction((s) => document.querySelector(s + " .badge")?.textContent === "revoked", sel);
    const conf = await p.evaluate((s) => {
      const r = document.querySelector(s).getBoundingClientRect();
      const c = [...document.querySelectorAll(".row-status")].find((e) => /revoked/.test(e.textContent));
      if (!c) return null;
      const b = c.getBoundingClientRect();
      return { dy: Math.min(Math.abs(b.top - r.bottom), Math.abs(b.bottom - r.top), Math.abs(b.top - r.top)), text: c.textContent };
    }, sel);
    check("admin:confirmation next to its row", conf && conf.dy < 60, JSON.stringify(conf));
    await everything(p, "admin", ["#search-owner", "#search-subject", "#search-status", "#search-form button", "#pending-reload", "#audit-serial"]);
  });

  // --- browsers without WebCrypto -------------------------------------------------
  await section("no-webcrypto", async () => {
    const before = result.problems.length;
    for (const how of ["subtle", "crypto"]) {
      const p = await alice.newPage();
      if (how === "subtle") await p.addInitScript(() => Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined }));
      else await p.addInitScript(() => Object.defineProperty(window, "crypto", { get: () => undefined }));
      for (const pg of ["", "request.html", "mycerts.html"]) {
        await p.goto(CA + pg);
        await p.waitForLoadState("networkidle");
      }
      await p.goto(CA + "request.html");
      await p.waitForSelector("#no-webcrypto:not([hidden])");
      await state(p, result, OUT, "bp-request-no-webcrypto-" + how);
      await p.close();
    }
    const errs = result.problems.slice(before).filter((x) => /script error/.test(x));
    check("no-webcrypto:no script error", errs.length === 0, errs.join("\n"));
  });

  // --- every page: axe, 390 px, keyboard ------------------------------------------
  await section("pages", async () => {
    const pages = {
      home: ["", ["#ca-download", "header a.brand", "nav a[href='request.html']"]],
      request: ["request.html", ["#quota a", "nav a[href='mycerts.html']"]],
      grid: ["grid.html", ["nav a[href='grid.html']"]],
      mycerts: ["mycerts.html", ["#mine tbody button.danger, #mine tbody a"]],
      pkcs12: ["pkcs12.html", ["#fb-password", "#fb-profile"]],
    };
    for (const [name, [url, controls]] of Object.entries(pages)) {
      await page.goto(CA + url);
      await page.waitForLoadState("networkidle");
      await everything(page, "page-" + name, controls);
    }
  });
  check("favicon:no failed loads", !(result.favicon_errors || []).length, (result.favicon_errors || []).join("\n"));
  check("favicon:linked", (await page.locator("link[rel=icon]").count()) === 1, "no <link rel=icon>");
}

let code = 0;
try {
  await main();
  const failed = Object.entries(result.checks).filter(([n, c]) => !c.ok && !XFAIL[n]);
  const xpassed = Object.entries(result.checks).filter(([n, c]) => c.ok && XFAIL[n]);
  if (failed.length) {
    console.error("FAILED checks:\n" + failed.map(([n, c]) => `  ${n}: ${c.detail}`).join("\n"));
    code = 1;
  }
  if (xpassed.length) console.error("expected to fail, passed: " + xpassed.map(([n]) => n).join(", "));
  if (result.problems.length) {
    console.error("problems:\n" + result.problems.join("\n"));
    code = 1;
  }
} catch (e) {
  console.error("FAILED:", e && e.stack ? e.stack : e);
  code = 1;
} finally {
  result.xfail = XFAIL;
  fs.writeFileSync(path.join(OUT, "badpaths.json"), JSON.stringify(result, null, 1));
  for (const { ctx, dir } of contexts) {
    await ctx.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(code);
