// flow.js: new key in the browser -> PKCS#10 -> the CA -> PKCS#12, shared
// by "Request a certificate" (POST enroll, site login) and "Renew" (POST
// renew, the client certificate).  The private key never leaves the page.
import { api, offerDownload, setStatus } from "./common.js";
import * as pki from "./pki.js";

function cnOf(subject, dflt) {
  const m = /(?:^|,\s*)CN=([^,]+)/.exec(subject);
  if (m) return m[1];
  const o = /(?:^|,\s*)O=([^,]+)/.exec(subject);
  return o ? o[1] : dflt;
}

// The PKCS#12 friendly name, as the server writes it (ca_pkcs12.c): the
// subject's CN, the CA's name, the expiry date and the serial's first 8
// hex digits, so that two imported certificates can be told apart.
export function friendlyName(cn, caName, notAfter, serial) {
  return cn + " (" + caName + ", until " + notAfter.toISOString().slice(0, 10) +
    ", serial " + serial.slice(0, 8) + ")";
}

// opts: endpoint ("enroll?profile=x" or "renew"), keyType, password,
// ui: {progress, status, download} elements.  Returns {serial, subject}.
export async function issueToPkcs12(opts) {
  const { ui } = opts;
  const step = (n, text) => {
    ui.progress.hidden = false;
    ui.progress.value = n;
    setStatus(ui.status, text);
  };
  ui.download.hidden = true;
  try {
    const rsa = (opts.keyType || "").startsWith("rsa");
    step(1, "Generating your " + (rsa ? opts.keyType.toUpperCase().replace(":", " ") : "EC " + (opts.keyType === "ec:P-384" ? "P-384" : "P-256")) +
      " key in this browser" + (rsa ? " (this can take a few seconds)…" : "…"));
    const keys = await pki.generateKey(opts.keyType);
    step(2, "Signing the certificate request…");
    const csr = await pki.makeCsr(keys);
    step(3, "Asking the CA for the certificate…");
    const res = await api(opts.endpoint, {
      method: "POST", body: csr, type: "application/pkcs10", accept: "application/x-pem-file",
    });
    const certDer = pki.pemToDerList(await res.text())[0];
    if (!certDer) throw new Error("the CA answered without a certificate");
    const loc = res.headers.get("Location") || "";
    const serial = loc.slice(loc.lastIndexOf("/") + 1);
    const chain = pki.pemToDerList(await (await api("cacert.pem")).text());
    const info = await pki.certInfo(certDer);
    const caName = chain.length ? cnOf((await pki.certInfo(chain[0])).subject, "CA") : "CA";
    step(4, "Protecting the key and certificate with your password (PKCS#12)…");
    const cn = cnOf(info.subject, "certificate");
    const p12 = await pki.makePkcs12(keys.privateKey, certDer, chain, opts.password,
      friendlyName(cn, caName, info.notAfter, serial));
    step(5, "");
    const name = cn.replace(/[^A-Za-z0-9._-]+/g, "_") + "-" + (serial.slice(0, 8) || "cert") + ".p12";
    offerDownload(ui.download, p12, name, "application/x-pkcs12", "Save " + name);
    setStatus(ui.status, "Done: certificate " + serial + " for " + info.subject +
      ", valid until " + info.notAfter.toISOString().slice(0, 10) +
      ". Save the file, then import it into your browser with the password you chose.", "success");
    ui.progress.hidden = true;
    return { serial, subject: info.subject, filename: name };
  } catch (e) {
    ui.progress.hidden = true;
    setStatus(ui.status, "Failed: " + e.message, "error");
    throw e;
  }
}
