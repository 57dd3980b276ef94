// request.js: "Request a certificate": the key is made here, the CA signs
// a PKCS#10, and the PKCS#12 is assembled here.
import { $, apiJson, passwordProblem, setStatus, watchPasswords } from "./common.js";
import { issueToPkcs12 } from "./flow.js";
import { hasWebCrypto } from "./pki.js";

const form = $("#request-form");
const status = $("#request-status");

// who is logged in: shown, and kept out of the password
let login = null;
apiJson("api/certs?limit=1").then((doc) => {
  login = doc.owner || null;
  if (login) $("#who").textContent = "Signed in as " + login + ": the certificate will be issued to you.";
}).catch(() => {});

if (!hasWebCrypto()) {
  $("#no-webcrypto").hidden = false;
  form.hidden = true;
} else {
  watchPasswords($("#password"), $("#password2"), $("#password-hint"), () => login);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const pw = $("#password").value;
    const problem = passwordProblem(pw, $("#password2").value, login);
    if (problem) {
      setStatus(status, problem, "error");
      $("#password").focus();
      return;
    }
    const profile = $("#profile").value.trim();
    const button = $("#request-button");
    button.disabled = true;
    try {
      await issueToPkcs12({
        endpoint: "enroll" + (profile ? "?profile=" + encodeURIComponent(profile) : ""),
        keyType: $("#key-type").value,
        password: pw,
        ui: { progress: $("#request-progress"), status, download: $("#request-download") },
      });
      form.reset();
      $("#password-hint").textContent = "";
      $("#after").hidden = false;
    } catch (e) {
      // shown by issueToPkcs12; also a hint for the key-less browsers
      if (e.name === "NotSupportedError") $("#no-webcrypto").hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
