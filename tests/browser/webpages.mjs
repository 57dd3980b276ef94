// Browser test of the web pages (issue 7), run by
// tests/integration/test_browser.py against a real apache2 with mod_certauth
// and build/htdocs at /ca/.  Debian's chromium, driven by playwright-core.
//
// Environment (set by the pytest file):
//   CERTAUTH_URL        https://127.0.0.1:PORT (the pages are at /ca/)
//   CERTAUTH_USERS      JSON {"alice": "password", "admin": "password"}
//   CERTAUTH_OUT        directory for screenshots, .p12 files, result.json
//   CERTAUTH_P12_PASS   the password typed for every PKCS#12
// The browser trusts the test CA through the NSS database in $HOME/.pki
// (prepared by the pytest file, as on a person's Linux desktop); Node
// (Playwright's client-certificate proxy) through NODE_EXTRA_CA_CERTS.
// Exit code 0 when every step passed; the first failure is printed.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { axe } from "./lib.mjs";

const BASE = process.env.CERTAUTH_URL;
const USERS = JSON.parse(process.env.CERTAUTH_USERS);
const OUT = process.env.CERTAUTH_OUT;
const PASS = process.env.CERTAUTH_P12_PASS;
const CA = BASE + "/ca/";
const ORIGIN = new URL(BASE).origin;
const ARGS = ["--headless", "--no-sandbox", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-gpu"];
const result = { problems: [] };
const contexts = [];
fs.mkdirSync(OUT, { recursive: true });

function log(...a) { console.log("[browser]", ...a); }

// A fresh browser profile for every context; every request is checked to go
// to the server itself, and CSP violations or script errors are collected.
async function open(name, options) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certauth-chromium-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium", headless: true, args: ARGS,
    acceptDownloads: true, viewport: { width: 1100, height: 900 }, ...options,
  });
  contexts.push({ ctx, dir });
  ctx.on("request", (req) => {
    const u = req.url();
    if (u.startsWith("blob:") || u.startsWith("data:")) return;
    if (new URL(u).origin !== ORIGIN) result.problems.push(`${name}: request to another site: ${u}`);
  });
  ctx.on("page", (p) => watch(name, p));
  for (const p of ctx.pages()) watch(name, p);
  return ctx;
}

function watch(name, page) {
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[134]/.test(m.text())) {
      result.problems.push(`${name}: console error on ${page.url()}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => result.problems.push(`${name}: script error on ${page.url()}: ${e.message}`));
}

// A screenshot and axe-core (result.axe, every state must have none).
async function shot(page, file) {
  await page.screenshot({ path: path.join(OUT, file), fullPage: true });
  await axe(page, result, file.replace(/\.png$/, ""));
}

async function firstPage(ctx) {
  return ctx.pages()[0] || ctx.newPage();
}

// Fill the two password fields and the key type, submit, wait for the
// download link, save the file.
async function makeP12(page, { pw, pw2, keyType, button, status, download, file, again }) {
  // after a success the form is sent once only: "another" opens it again
  if (again && await page.isVisible(again)) await page.click(again);
  await page.waitForFunction((b) => !document.querySelector(b).disabled, button, { timeout: 15000 });
  await page.fill(pw, PASS);
  await page.fill(pw2, PASS);
  if (keyType) await page.selectOption(keyType.sel, keyType.value);
  await page.click(button);
  await page.waitForFunction(([d, s]) => !document.querySelector(d).hidden ||
    document.querySelector(s).classList.contains("error"), [download, status], { timeout: 60000 });
  const msg = await page.textContent(status);
  assert.ok(!(await page.locator(download).isHidden()), "no PKCS#12 offered: " + msg);
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click(download + " a")]);
  const target = path.join(OUT, file);
  await dl.saveAs(target);
  log("saved", file, "-", msg);
  return { file: target, status: msg, suggested: dl.suggestedFilename() };
}

function serialOf(status) {
  const m = /certificate ([0-9A-F]+)/.exec(status);
  assert.ok(m, "no serial in: " + status);
  return m[1];
}

async function main() {
  // --- a person with the site login (HTTP Basic) -------------------------
  const alice = await open("alice", { httpCredentials: { username: "alice", password: USERS.alice } });
  let page = await firstPage(alice);

  await page.goto(CA);
  await page.waitForFunction(() => /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(
    document.querySelector("#ca-fingerprint").textContent), null, { timeout: 15000 });
  result.fingerprint = await page.textContent("#ca-fingerprint");
  result.ca_subject = await page.textContent("#ca-subject");
  const csp = (await page.request.get(CA)).headers()["content-security-policy"] || "";
  assert.match(csp, /script-src 'self'/, "no CSP header on the pages");
  await shot(page, "home.png");

  await page.goto(CA + "request.html");
  // the password rules and the confirmation, before anything is sent
  await page.fill("#password", "short");
  await page.fill("#password2", "short");
  await page.click("#request-button");
  assert.match(await page.textContent("#request-status"), /at least 10/);
  await page.fill("#password", PASS);
  await page.fill("#password2", PASS + "x");
  await page.click("#request-button");
  assert.match(await page.textContent("#request-status"), /differ/);
  await page.waitForFunction(() => /Signed in as alice/.test(document.querySelector("#who").textContent));
  await page.fill("#password", "Alice-2026-cert");
  await page.fill("#password2", "Alice-2026-cert");
  await page.click("#request-button");
  assert.match(await page.textContent("#request-status"), /login/);
  // keyboard only: labels lead to the fields, Enter submits
  await page.getByLabel("Password for the PKCS#12 file").fill(PASS);
  await page.getByLabel("The same password again").fill(PASS);
  await page.getByLabel("Key type").selectOption("ec");
  await page.getByLabel("The same password again").press("Enter");
  await page.waitForSelector("#request-download:not([hidden]) a, #request-status.error", { timeout: 60000 });
  const ecStatus = await page.textContent("#request-status");
  assert.ok(!(await page.locator("#request-download").isHidden()), "request failed: " + ecStatus);
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#request-download a")]);
  result.ec = { file: path.join(OUT, "alice-ec.p12"), status: ecStatus, serial: serialOf(ecStatus) };
  await dl.saveAs(result.ec.file);
  await shot(page, "request.png");
  log("EC certificate", result.ec.serial);

  // RSA on request
  const rsa = await makeP12(page, { pw: "#password", pw2: "#password2", keyType: { sel: "#key-type", value: "rsa:2048" },
    button: "#request-button", status: "#request-status", download: "#request-download", file: "alice-rsa.p12",
    again: "#request-again" });
  result.rsa = { ...rsa, serial: serialOf(rsa.status) };
  for (const [kind, value] of [["p384", "ec:P-384"], ["rsa3072", "rsa:3072"]]) {
    const got = await makeP12(page, { pw: "#password", pw2: "#password2", keyType: { sel: "#key-type", value },
      button: "#request-button", status: "#request-status", download: "#request-download", file: `alice-${kind}.p12`,
      again: "#request-again" });
    result[kind] = { ...got, serial: serialOf(got.status) };
  }

  // an API error reaches the person: an unknown profile
  await page.goto(CA + "request.html");
  await page.click("summary");
  await page.fill("#profile", "no-such-profile");
  await page.fill("#password", PASS);
  await page.fill("#password2", PASS);
  await page.click("#request-button");
  await page.waitForSelector("#request-status.error", { timeout: 30000 });
  result.api_error = await page.textContent("#request-status");
  assert.match(result.api_error, /404 unknown profile/);
  await shot(page, "request-error.png");

  // readable on a phone: nothing wider than the screen
  await page.setViewportSize({ width: 360, height: 740 });
  for (const p of ["", "request.html", "mycerts.html", "grid.html", "pkcs12.html"]) {
    await page.goto(CA + p);
    await page.waitForLoadState("networkidle");
    const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(over <= 0, `${p || "home"} is ${over}px wider than a phone screen`);
    await shot(page, "phone-" + (p.replace(".html", "") || "home") + ".png");
  }
  await page.setViewportSize({ width: 1100, height: 900 });

  // a browser without WebCrypto is sent to the server-made fallback
  const old = await alice.newPage();
  await old.addInitScript(() => Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined }));
  await old.goto(CA + "request.html");
  await old.waitForSelector("#no-webcrypto:not([hidden])");
  assert.ok(await old.isHidden("#request-form"));
  await shot(old, "request-no-webcrypto.png");
  await old.click("#no-webcrypto a[href='pkcs12.html']");
  await old.waitForURL(/pkcs12\.html$/);
  await old.close();

  // the server-made fallback
  await page.goto(CA + "pkcs12.html");
  const fb = await makeP12(page, { pw: "#fb-password", pw2: "#fb-password2", button: "#pkcs12-button",
    status: "#pkcs12-status", download: "#pkcs12-download", file: "alice-server.p12" });
  result.fallback = { ...fb, serial: serialOf(fb.status) };
  await shot(page, "pkcs12.png");

  // My certificates with the login: the list, no certificate presented
  await page.goto(CA + "mycerts.html");
  await page.waitForSelector(`tr[data-serial="${result.ec.serial}"]`);
  assert.ok(await page.isVisible("#renew-none"));
  assert.ok(await page.isHidden("#admin"));
  await shot(page, "mycerts-login.png");

  await page.goto(CA + "grid.html");
  await shot(page, "grid.png");

  // --- the same person, authenticated by the certificate just made ------
  const holder = await open("certificate", {
    clientCertificates: [{ origin: ORIGIN, pfxPath: result.ec.file, passphrase: PASS }],
  });
  page = await firstPage(holder);
  await page.goto(CA + "mycerts.html");
  await page.waitForSelector(`tr[data-serial="${result.ec.serial}"] button.secondary`, { timeout: 15000 });
  result.who = await page.textContent("#who");
  assert.match(result.who, new RegExp("with certificate " + result.ec.serial));
  await shot(page, "mycerts-certificate.png");

  // revoke the RSA certificate: cancel first (nothing happens), then confirm
  const rsaRow = `tr[data-serial="${result.rsa.serial}"]`;
  await page.click(`${rsaRow} button.danger`);
  assert.ok(await page.isVisible("#revoke-dialog"));
  await page.click("#revoke-cancel");
  assert.ok(await page.isHidden("#revoke-dialog"));
  assert.match(await page.textContent(`${rsaRow} .badge`), /^valid$/);
  await page.click(`${rsaRow} button.danger`);
  await page.selectOption("#revoke-reason", "keyCompromise");
  await shot(page, "revoke-dialog.png");
  await page.click("#revoke-confirm");
  await page.waitForFunction((s) => document.querySelector(s + " .badge")?.textContent === "revoked", rsaRow);
  await page.waitForSelector(".row-status.success");
  result.revoke_status = await page.textContent(".row-status.success");
  assert.match(result.revoke_status, /revoked on .* \(key compromise\)/);

  // renew the presented certificate: new key here, new PKCS#12
  await page.click(`tr[data-serial="${result.ec.serial}"] button.secondary`);
  const ren = await makeP12(page, { pw: "#renew-password", pw2: "#renew-password2", button: "#renew-button",
    status: "#renew-status", download: "#renew-download", file: "alice-renewed.p12" });
  result.renewed = { ...ren, serial: serialOf(ren.status) };
  assert.notEqual(result.renewed.serial, result.ec.serial);
  await shot(page, "renewed.png");

  // --- an administrator: search, revoke anyone's, audit log --------------
  const admin = await open("admin", { httpCredentials: { username: "admin", password: USERS.admin } });
  page = await firstPage(admin);
  await page.goto(CA + "mycerts.html");
  await page.waitForSelector("#admin:not([hidden])");
  // the administrator's own list is theirs only; the search finds anyone's
  await page.waitForFunction(() => /certificate\(s\)/.test(document.querySelector("#list-status").textContent));
  assert.equal(await page.locator(`#mine tr[data-serial="${result.ec.serial}"]`).count(), 0);
  await page.fill("#search-owner", "alice");
  await page.click("#search-form button[type=submit]");
  const fbRow = `#search-results tr[data-serial="${result.fallback.serial}"]`;
  await page.waitForSelector(fbRow);
  await page.click(`${fbRow} button.danger`);
  await page.selectOption("#revoke-reason", "affiliationChanged");
  await page.click("#revoke-confirm");
  await page.waitForFunction((s) => document.querySelector(s + " .badge")?.textContent === "revoked", fbRow);
  // the EST request waiting for approval (made by the pytest file)
  await page.waitForSelector("#pending tbody tr button");
  result.pending_row = await page.textContent("#pending tbody tr");
  await page.click("#pending tbody tr button:not(.danger)");
  await page.waitForSelector("#pending-status.success");
  result.pending_status = await page.textContent("#pending-status");
  assert.match(result.pending_status, /approved/);
  await page.fill("#audit-serial", result.rsa.serial);
  await page.click("#audit-form button");
  await page.waitForFunction(() => document.querySelectorAll("#audit tbody tr").length > 0);
  result.audit = await page.textContent("#audit tbody");
  assert.match(result.audit, /revoke/);
  await shot(page, "admin.png");
}

let code = 0;
try {
  await main();
  if (result.problems.length) {
    console.error("problems:\n" + result.problems.join("\n"));
    code = 1;
  }
} catch (e) {
  console.error("FAILED:", e && e.stack ? e.stack : e);
  code = 1;
} finally {
  fs.writeFileSync(path.join(OUT, "result.json"), JSON.stringify(result, null, 1));
  for (const { ctx, dir } of contexts) {
    await ctx.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(code);
