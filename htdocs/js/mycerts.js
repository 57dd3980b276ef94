// mycerts.js: "My certificates": the list from api/certs, downloads, renew
// (new key made here, new PKCS#12) and revoke (confirmation and reason);
// for administrators also search, revoke any, the audit log and pending
// EST requests.
import { $, $$, apiJson, fmtDate, passwordProblem, postJson, setStatus, showRule, watchPasswords } from "./common.js";
import { issueToPkcs12 } from "./flow.js";
import { hasWebCrypto } from "./pki.js";

const listStatus = $("#list-status");
let me = { presented: null, admin: false, owner: null };
let rule = null;
// a confirmation shown at its row ({tbody, serial, text}), kept across the
// reload of the list that follows an action
let rowNote = null;

// Revocation reasons in the words of the revoke dialog.
function reasonName(code) {
  const o = $$("#revoke-reason option").find((x) => x.value === code);
  return o ? o.textContent.replace(/\s*\(.*\)$/, "") : code;
}

function dateOf(iso) {
  return iso ? iso.slice(0, 10) : "";
}

// What the API says about the certificate the browser presents, as the
// person should read it: what happened and what to do.
function certProblemText(problem) {
  const m = /certificate ([0-9A-F]+) (?:is (revoked|superseded)|has (expired))/.exec(problem || "");
  if (!m) return "Your browser presents a certificate this site does not accept (" + problem +
    "); remove it from the browser, or continue with your login.";
  const what = m[2] === "superseded" ? "superseded (it was renewed)" : (m[2] || m[3]);
  return "Your browser presents certificate " + m[1] + ", which is " + what +
    "; remove it from the browser, or continue with your login.";
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function td(label, ...kids) {
  return el("td", { "data-label": label }, ...kids);
}

// One table of certificates (own list and admin search alike).
function renderCerts(tbody, certs, { reload, showOwner }) {
  tbody.textContent = "";
  if (!certs.length) {
    const cols = tbody.closest("table").querySelectorAll("thead th").length;
    const none = el("td", { colspan: String(cols) }, "No certificates. ");
    if (!showOwner) none.append(el("a", { href: "request.html" }, "Request one"), ".");
    tbody.append(el("tr", {}, none));
    return;
  }
  const now = Date.now();
  for (const c of certs) {
    const actions = el("td", { "data-label": "Actions" },
      el("a", { href: "certs/" + c.serial, download: c.serial + ".crt" }, ".crt"), " ",
      el("a", { href: "certs/" + c.serial + ".pem", download: c.serial + ".pem" }, ".pem"), " ");
    const presented = c.serial === me.presented;
    let note = "";
    if (c.status === "valid" && presented) {
      // Renew only inside the renewal window, which the API tells
      const opens = c.renewal_opens ? Date.parse(c.renewal_opens) : NaN;
      if (c.renewal_opens && opens > now) {
        note += " · Renewal opens on " + dateOf(c.renewal_opens) + ".";
      } else if (c.renewal_opens) {
        actions.append(el("button", {
          type: "button", class: "secondary", "data-serial": c.serial,
          "aria-label": "Renew certificate " + c.serial, onclick: () => openRenew(c),
        }, "Renew"));
      } else {
        note += " · Its profile is gone: it cannot be renewed; request a new one.";
      }
    }
    if (c.status === "valid" || c.status === "expired") {
      actions.append(el("button", {
        type: "button", class: "danger", "data-serial": c.serial,
        "aria-label": "Revoke certificate " + c.serial, onclick: () => openRevoke(c, reload, tbody),
      }, "Revoke"));
    }
    let st = "";
    if (c.status === "revoked") st += "on " + fmtDate(c.revoked_at) + (c.reason ? ", " + reasonName(c.reason) : "");
    else if (c.status === "superseded" && c.revoked_at) st += "on " + fmtDate(c.revoked_at);
    if (c.replaced_by) st += " → " + c.replaced_by;
    if (presented) st += " · presented by this browser";
    st += note;
    const row = el("tr", { "data-serial": c.serial, class: presented ? "presented" : "" },
      el("td", { class: "serial", "data-label": "Serial" }, c.serial),
      td("Subject", c.subject + (showOwner ? " (owner " + c.owner + ")" : "")),
      td("Profile", c.profile),
      td("Valid until", fmtDate(c.not_after)),
      td("Status", el("span", { class: "badge " + c.status }, c.status), " ", el("span", { class: "note" }, st)),
      actions);
    tbody.append(row);
    if (rowNote && rowNote.tbody === tbody && rowNote.serial === c.serial) noteAt(row, rowNote.text);
  }
}

// A confirmation right below its row (not at the top of the page).
function noteAt(row, text) {
  const cols = row.closest("table").querySelectorAll("thead th").length;
  const cell = el("td", { colspan: String(cols), class: "row-status success", role: "status" });
  row.after(el("tr", { class: "row-status-row" }, cell));
  cell.textContent = text;
}

async function loadMine() {
  setStatus(listStatus, "Loading…");
  try {
    let doc = await apiJson("api/certs?limit=1000");
    me = { presented: doc.presented || null, admin: !!doc.admin, owner: doc.owner || null };
    rule = doc.password_rule;
    showRule(rule);
    // an administrator's list is everyone's: here only their own
    if (me.admin && me.owner) doc = await apiJson("api/certs?limit=1000&owner=" + encodeURIComponent(me.owner));
    $("#who").textContent = me.owner
      ? "Signed in as " + me.owner + (me.presented ? ", with certificate " + me.presented : ", with the site login") +
        (me.admin ? " (administrator)" : "") + "."
      : "";
    // a certificate the browser presents but the site does not accept
    $("#cert-problem").hidden = !doc.cert_problem;
    if (doc.cert_problem) $("#cert-problem-text").textContent = certProblemText(doc.cert_problem);
    $("#continue-login").hidden = true;
    renderCerts($("#mine tbody"), doc.certificates, { reload: reloadAll });
    setStatus(listStatus, doc.certificates.length + " certificate(s)" + (doc.more ? " (more exist: showing the first 1000)" : "") + ".");
    // the section shows the hint (no certificate presented) or the open
    // Renew form; never its heading alone
    $("#renew-none").hidden = !!me.presented;
    $("#renew-section").hidden = !!me.presented && $("#renew").hidden;
    if (me.admin) {
      $("#admin").hidden = false;
      loadAudit();
      loadPending();
    }
  } catch (e) {
    $("#renew-section").hidden = true;
    $("#admin").hidden = true;
    if (e.status === 401 && /client certificate/.test(e.detail || "")) {
      // the browser presents a certificate that no longer opens the list
      $("#cert-problem").hidden = false;
      $("#cert-problem-text").textContent = certProblemText(e.detail);
      setStatus(listStatus, "Cannot list your certificates with that certificate.", "error");
      return;
    }
    setStatus(listStatus, "Cannot list your certificates: " + e.message +
      (e.status === 401 ? ". If you just renewed or revoked the certificate this browser presents, " +
        "import the new file (or log in) and reload the page." : ""), "error");
  }
}
$("#continue-login").addEventListener("click", () => loadMine());

async function reloadAll() {
  await loadMine();
  if (me.admin && $("#search-results").dataset.loaded) await search();
}

// --- revoke ------------------------------------------------------------
const dialog = $("#revoke-dialog");
let revoking = null;

function openRevoke(c, reload, tbody) {
  revoking = { cert: c, reload, tbody };
  $("#revoke-what").textContent = c.serial + " — " + c.subject;
  $("#revoke-reason").value = "unspecified";
  setStatus($("#revoke-status"), "");
  dialog.showModal();
  $("#revoke-reason").focus();
}

$("#revoke-cancel").addEventListener("click", () => dialog.close());
$("#revoke-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const btn = $("#revoke-confirm");
  btn.disabled = true;
  try {
    const r = await (await postJson("revoke", { serial: revoking.cert.serial, reason: $("#revoke-reason").value })).json();
    dialog.close();
    const said = "Certificate " + r.serial + " revoked on " + fmtDate(r.revoked_at) + " (" + reasonName(r.reason) + ").";
    rowNote = { tbody: revoking.tbody, serial: r.serial, text: said };
    // the renew form of a certificate that is now revoked goes
    if (renewing === r.serial) closeRenew();
    if (r.serial === me.presented) {
      // this browser's certificate no longer opens the list (asking again
      // would only bring up a login prompt): update the page here
      markRow(r.serial, "revoked", "on " + fmtDate(r.revoked_at) + ", " + reasonName(r.reason));
      me.presented = null;
      $("#who").textContent = "Signed in as " + me.owner + " with certificate " + r.serial +
        ", which is now revoked: remove it from the browser, or continue with your login.";
      const row = revoking.tbody.querySelector('tr[data-serial="' + r.serial + '"]');
      if (row) noteAt(row, said);
    } else {
      await revoking.reload();
    }
  } catch (e) {
    setStatus($("#revoke-status"), "Failed: " + e.message, "error");
  } finally {
    btn.disabled = false;
  }
});

// The page's own record of a change to the presented certificate.
function markRow(serial, status, note) {
  for (const row of document.querySelectorAll('tr[data-serial="' + serial + '"]')) {
    const badge = row.querySelector(".badge");
    badge.className = "badge " + status;
    badge.textContent = status;
    row.querySelector(".note").textContent = note + " (was presented by this browser)";
    for (const b of row.querySelectorAll("button")) b.remove();
  }
}

// --- renew ---------------------------------------------------------------
const renewForm = $("#renew-form");
let renewing = null;

function closeRenew() {
  renewing = null;
  renewForm.reset();
  $("#renew").hidden = true;
  $("#renew-section").hidden = $("#renew-none").hidden;
  $("#renew-hint").textContent = "";
  setStatus($("#renew-status"), "");
  $("#renew-download").hidden = true;
  $("#renew-download").textContent = "";
  $("#renew-progress").hidden = true;
}

function openRenew(c) {
  renewing = c.serial;
  $("#renew-section").hidden = false;
  $("#renew").hidden = false;
  $("#renew-fields").hidden = false;
  $("#renew-what").textContent = c.serial + " — " + c.subject + ", valid until " + fmtDate(c.not_after);
  $("#renew-password").focus();
}

watchPasswords($("#renew-password"), $("#renew-password2"), $("#renew-hint"), () => me.owner, () => rule);
renewForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const status = $("#renew-status");
  if (!hasWebCrypto()) {
    setStatus(status, "This browser cannot make keys; request a new certificate with the server-made PKCS#12 instead.", "error");
    return;
  }
  const pw = $("#renew-password").value;
  if (!rule) { setStatus(status, "The password rule is not loaded; reload the page.", "error"); return; }
  const problem = passwordProblem(rule, pw, $("#renew-password2").value, me.owner);
  if (problem) { setStatus(status, problem, "error"); return; }
  const btn = $("#renew-button");
  btn.disabled = true;
  try {
    const old = me.presented;
    const got = await issueToPkcs12({
      endpoint: "renew", keyType: $("#renew-key-type").value, password: pw,
      ui: { progress: $("#renew-progress"), status, download: $("#renew-download") },
    });
    renewForm.reset();
    $("#renew-hint").textContent = "";
    $("#renew-fields").hidden = true;
    // the old certificate is superseded: this browser presents it until the
    // new file is imported, so the list is updated here, not asked again
    markRow(old, "superseded", "→ " + got.serial);
    me.presented = null;
    renewing = null;
    setStatus($("#action-status"), "Renewed: " + old + " is superseded by " + got.serial +
      ". Import the new file into your browser (and remove the old certificate), then reload this page.", "success");
  } catch (_) {
    // shown by issueToPkcs12
  } finally {
    btn.disabled = false;
  }
});

// --- administrators ------------------------------------------------------
async function search() {
  const q = new URLSearchParams({ limit: "200" });
  for (const f of ["owner", "subject", "status"]) {
    const v = $("#search-" + f).value.trim();
    if (v) q.set(f, v);
  }
  const out = $("#search-count");
  setStatus(out, "Searching…");
  try {
    const doc = await apiJson("api/certs?" + q);
    $("#search-results").dataset.loaded = "1";
    $("#search-results").hidden = false;
    renderCerts($("#search-results tbody"), doc.certificates, { reload: reloadAll, showOwner: true });
    setStatus(out, doc.certificates.length + " found" + (doc.more ? " (more exist: narrow the search)" : "") + ".");
  } catch (e) {
    setStatus(out, "Search failed: " + e.message, "error");
  }
}
$("#search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });

async function loadAudit() {
  const out = $("#audit-status");
  const serial = $("#audit-serial").value.trim();
  try {
    const doc = await apiJson("api/audit?limit=50" + (serial ? "&serial=" + encodeURIComponent(serial) : ""));
    const tbody = $("#audit tbody");
    tbody.textContent = "";
    for (const e of doc.events) {
      tbody.append(el("tr", {},
        td("Time", fmtDate(e.at)), td("Who", e.actor + " (" + e.auth + ", " + e.client + ")"),
        td("Action", e.action), el("td", { class: "serial", "data-label": "Serial" }, e.serial),
        td("Outcome", e.outcome), td("Detail", e.detail)));
    }
    setStatus(out, doc.events.length ? "The latest " + doc.events.length + " events." : "No events.");
  } catch (e) {
    setStatus(out, "Cannot read the audit log: " + e.message, "error");
  }
}
$("#audit-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadAudit(); });

async function loadPending(done) {
  const out = $("#pending-status");
  try {
    const doc = await apiJson("api/pending");
    const tbody = $("#pending tbody");
    tbody.textContent = "";
    for (const p of doc.requests) {
      const decide = (decision) => async () => {
        try {
          const r = await (await postJson("api/pending/" + encodeURIComponent(p.id), { decision })).json();
          await loadPending("Request " + r.id + " " + r.status + " (" + p.owner + ", " + p.subject + ").");
        } catch (e) {
          setStatus(out, "Failed: " + e.message, "error");
        }
      };
      tbody.append(el("tr", {},
        td("Request", p.id), td("Owner", p.owner), td("Profile", p.profile), td("Subject", p.subject),
        td("Since", fmtDate(p.created_at)),
        td("Decision",
          el("button", { type: "button", onclick: decide("approve"), "aria-label": "Approve request " + p.id }, "Approve"),
          el("button", { type: "button", class: "danger", onclick: decide("reject"), "aria-label": "Reject request " + p.id }, "Reject"))));
    }
    if (!doc.requests.length) {
      tbody.append(el("tr", {}, el("td", { colspan: String($$("#pending thead th").length) }, "No requests are waiting.")));
    }
    if (done) setStatus(out, done, "success");
    else setStatus(out, doc.requests.length ? doc.requests.length + " waiting." : "No requests are waiting.");
  } catch (e) {
    setStatus(out, "Cannot list pending requests: " + e.message, "error");
  }
}
$("#pending-reload").addEventListener("click", () => loadPending());

// ACME external account binding credentials (POST api/acme/eab)
$("#acme-eab").addEventListener("click", async () => {
  const out = $("#acme-out");
  try {
    const d = await (await postJson("api/acme/eab", {})).json();
    out.textContent = "directory: " + d.directory + "\nkid:       " + d.kid +
      "\nhmac_key:  " + d.hmac_key + "\nexpires:   " + d.expires +
      "\n\ncertbot certonly --server " + d.directory + " --eab-kid=" + d.kid +
      " --eab-hmac-key=" + d.hmac_key + " -d NAME …";
    out.hidden = false;
    setStatus($("#acme-status"), "Credentials made; they are shown only now.", "success");
  } catch (e) {
    out.hidden = true;
    setStatus($("#acme-status"), "Cannot make ACME credentials: " + e.message, "error");
  }
});

loadMine();
