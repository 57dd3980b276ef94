// request.js: "Request a certificate": the key is made here, the CA signs
// a PKCS#10, and the PKCS#12 is assembled here.  Before the form: who is
// signed in, the password rule and how many certificates the person has
// of the limit; the form is sent once.
import { $, passwordProblem, setStatus, showQuota, showRule, watchPasswords, whoAmI } from "./common.js";
import { issueToPkcs12 } from "./flow.js";
import { hasWebCrypto } from "./pki.js";

const form = $("#request-form");
const status = $("#request-status");
const button = $("#request-button");
const again = $("#request-again");

let login = null, rule = null, full = false, busy = false, done = false;

function updateButton() {
  button.disabled = busy || done || full || !rule;
  again.hidden = !done || full;
}

// who is logged in (shown, kept out of the password), the rule, the limit
// of the profile the request would use
async function refresh() {
  const profile = $("#profile").value.trim();
  try {
    const doc = await whoAmI(profile);
    login = doc.owner || null;
    rule = doc.password_rule;
    showRule(rule);
    if (login) $("#who").textContent = "Signed in as " + login + ": the certificate will be issued to you.";
    if (profile === $("#profile").value.trim()) full = showQuota($("#quota"), doc.quota);
  } catch (e) {
    setStatus($("#quota"), "Cannot check your certificates: " + e.message, "error");
  }
  updateButton();
}

if (!hasWebCrypto()) {
  $("#no-webcrypto").hidden = false;
  form.hidden = true;
} else {
  watchPasswords($("#password"), $("#password2"), $("#password-hint"), () => login, () => rule);
  let timer = null;
  $("#profile").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  again.addEventListener("click", () => {
    done = false;
    $("#request-download").hidden = true;
    setStatus(status, "");
    updateButton();
    $("#password").focus();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (busy || done || full || !rule) return;
    const pw = $("#password").value;
    const problem = passwordProblem(rule, pw, $("#password2").value, login);
    if (problem) {
      setStatus(status, problem, "error");
      $("#password").focus();
      return;
    }
    const profile = $("#profile").value.trim();
    busy = true;
    updateButton();
    try {
      await issueToPkcs12({
        endpoint: "enroll" + (profile ? "?profile=" + encodeURIComponent(profile) : ""),
        keyType: $("#key-type").value,
        password: pw,
        ui: { progress: $("#request-progress"), status, download: $("#request-download") },
      });
      form.reset();
      $("#profile").value = profile;
      $("#password-hint").textContent = "";
      $("#after").hidden = false;
      done = true;
    } catch (e) {
      // shown by issueToPkcs12; also a hint for the key-less browsers
      if (e.name === "NotSupportedError") $("#no-webcrypto").hidden = false;
    } finally {
      busy = false;
      await refresh();
    }
  });
}
refresh();
