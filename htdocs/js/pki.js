// pki.js: keys, PKCS#10 requests and PKCS#12 files made in the browser.
// WebCrypto makes the keys and does the hashing, signing and encryption;
// pkijs + asn1js (bundled at build time) do the ASN.1.  They are loaded
// on first use, not with the page: pkijs sets up its crypto engine when it
// loads, which throws in a browser without WebCrypto (no window.crypto),
// and such a browser must still see the pages and the fallback.
let asn1js, pkijs;
async function lib() {
  if (!pkijs) {
    if (!globalThis.crypto) throw Object.assign(new Error("this browser has no WebCrypto"), { name: "NotSupportedError" });
    [asn1js, pkijs] = await Promise.all([import("asn1js"), import("pkijs")]);
  }
}

const OID = {
  commonName: "2.5.4.3",
  keyBag: "1.2.840.113549.1.12.10.1.2", // pkcs8ShroudedKeyBag
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
};

// PKCS#12 protection: PBES2 (PBKDF2 with HMAC-SHA-256, AES-256-CBC) for the
// key and the certificates, and a SHA-256 MAC (as OpenSSL 3 writes by
// default; read by OpenSSL 1.1.1+, NSS, macOS, Windows 10+).
export const PBKDF2_ITERATIONS = 100000;
export const MAC_ITERATIONS = 2048;

export function hasWebCrypto() {
  return !!(globalThis.crypto && globalThis.crypto.subtle &&
            globalThis.isSecureContext !== false);
}

// keyType: "ec" (P-256, default), "ec:P-384", "rsa:2048", "rsa:3072"
export function keyAlgorithm(keyType) {
  switch (keyType || "ec") {
    case "ec":
    case "ec:P-256":
      return { name: "ECDSA", namedCurve: "P-256" };
    case "ec:P-384":
      return { name: "ECDSA", namedCurve: "P-384" };
    case "rsa:2048":
    case "rsa:3072":
      return {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: Number(keyType.slice(4)),
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      };
    default:
      throw new Error("unknown key type " + keyType);
  }
}

// The key pair; extractable, because the private key goes into the PKCS#12.
export async function generateKey(keyType) {
  await lib();
  const alg = keyAlgorithm(keyType);
  const usages = ["sign", "verify"];
  return crypto.subtle.generateKey(alg, true, usages);
}

// A PKCS#10 request signed with the new key, DER.  The CA builds the
// subject from the login and its profile; the CN here is only a label.
export async function makeCsr(keyPair, cn) {
  await lib();
  const csr = new pkijs.CertificationRequest();
  csr.version = 0;
  csr.subject.typesAndValues.push(new pkijs.AttributeTypeAndValue({
    type: OID.commonName,
    value: new asn1js.Utf8String({ value: cn || "certauth web request" }),
  }));
  await csr.subjectPublicKeyInfo.importKey(keyPair.publicKey);
  csr.attributes = [];
  await csr.sign(keyPair.privateKey, "SHA-256");
  return new Uint8Array(csr.toSchema().toBER(false));
}

// PEM (one or more certificates) to a list of DER Uint8Arrays.
export function pemToDerList(pem) {
  const out = [];
  const re = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;
  let m;
  while ((m = re.exec(pem))) {
    const b64 = m[1].replace(/\s+/g, "");
    const bin = atob(b64);
    const der = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
    out.push(der);
  }
  return out;
}

export async function parseCert(der) {
  await lib();
  return pkijs.Certificate.fromBER(der);
}

const NAMES = {
  "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
  "2.5.4.10": "O", "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
};

// "CN=x, O=y" (most significant last, like openssl's RFC 2253 order)
export function nameToString(name) {
  return name.typesAndValues.slice().reverse().map((tv) =>
    (NAMES[tv.type] || tv.type) + "=" + tv.value.valueBlock.value).join(", ");
}

export async function certInfo(der) {
  const c = await parseCert(der);
  return {
    subject: nameToString(c.subject),
    issuer: nameToString(c.issuer),
    notBefore: c.notBefore.value,
    notAfter: c.notAfter.value,
  };
}

// SHA-256 fingerprint as openssl x509 -fingerprint -sha256 prints it.
export async function fingerprint(der) {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0").toUpperCase())
    .join(":");
}

function bmpAttr(type, text) {
  return new pkijs.Attribute({
    type, values: [new asn1js.BmpString({ value: text })],
  });
}

function certBag(der, attrs) {
  return new pkijs.SafeBag({
    bagId: OID.certBag,
    bagValue: new pkijs.CertBag({
      certId: OID.x509Certificate,
      certValue: new asn1js.OctetString({ valueHex: der }),
    }),
    bagAttributes: attrs,
  });
}

// A PKCS#12 with the private key, its certificate and the CA chain,
// protected by `password` (a string; UTF-8 for PBES2, BMPString for the
// MAC, as PKCS#12 and OpenSSL want).  Returns the DER bytes.
export async function makePkcs12(privateKey, certDer, chainDers, password,
                                 friendlyName) {
  await lib();
  const pass = new TextEncoder().encode(password).buffer;
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", privateKey);
  const keyId = new Uint8Array(
    await crypto.subtle.digest("SHA-1", certDer)); // ties key and cert
  const ids = () => [
    bmpAttr(OID.friendlyName, friendlyName),
    new pkijs.Attribute({
      type: OID.localKeyId,
      values: [new asn1js.OctetString({ valueHex: keyId })],
    }),
  ];
  const keyBag = new pkijs.SafeBag({
    bagId: OID.keyBag,
    bagValue: new pkijs.PKCS8ShroudedKeyBag({
      parsedValue: pkijs.PrivateKeyInfo.fromBER(pkcs8),
    }),
    bagAttributes: ids(),
  });
  const certBags = [certBag(certDer, ids())];
  for (const der of chainDers || []) certBags.push(certBag(der, undefined));

  const pbes2 = {
    password: pass,
    contentEncryptionAlgorithm: { name: "AES-CBC", length: 256 },
    hmacHashAlgorithm: "SHA-256",
    iterationCount: PBKDF2_ITERATIONS,
  };
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [keyBag] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await keyBag.bagValue.makeInternalValues({ ...pbes2 });
  await pfx.parsedValue.authenticatedSafe.makeInternalValues({
    safeContents: [{}, { ...pbes2 }],
  });
  await pfx.makeInternalValues({
    password: pass,
    iterations: MAC_ITERATIONS,
    pbkdf2HashAlgorithm: "SHA-256",
    hmacHashAlgorithm: "SHA-256",
  });
  return new Uint8Array(pfx.toSchema().toBER(false));
}
