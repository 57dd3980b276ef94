// home.js: the CA certificate's SHA-256 fingerprint, computed here from
// the very bytes of cacert.crt that the link below downloads.
import { $, api, bytesFromResponse } from "./common.js";
import * as pki from "./pki.js";

async function show() {
  const out = $("#ca-fingerprint");
  try {
    const der = await bytesFromResponse(await api("cacert.crt"));
    if (!pki.hasWebCrypto()) {
      out.textContent = "(this browser cannot compute it: use openssl, below)";
      return;
    }
    out.textContent = await pki.fingerprint(der);
    const info = await pki.certInfo(der);
    $("#ca-subject").textContent = info.subject;
    $("#ca-valid").textContent = info.notBefore.toISOString().slice(0, 10) +
      " to " + info.notAfter.toISOString().slice(0, 10);
  } catch (e) {
    out.textContent = "cannot read the CA certificate: " + e.message;
    out.classList.add("error");
  }
}
show();
