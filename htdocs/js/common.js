// common.js: what every page needs: API calls, errors, downloads, the
// password rules.  Pages live next to the endpoints (/ca/index.html and
// /ca/enroll), so every API path here is relative.

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

// An API error as the person should read it: "403 profile not allowed:
// detail" from the module's {"error", "detail"} JSON, or the HTTP status.
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(status + " " + (error || "error") + (detail ? ": " + detail : ""));
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

// fetch() for the module's endpoints.  Every POST carries X-Requested-With
// (the cross-site request rule of README.md's "HTTP interface": a
// cross-site form cannot set it), whatever its content type.
export async function api(path, { method = "GET", body, type, accept } = {}) {
  const headers = { "X-Requested-With": "XMLHttpRequest" };
  if (type) headers["Content-Type"] = type;
  if (accept) headers.Accept = accept;
  let res;
  try {
    res = await fetch(path, {
      method, body, headers, credentials: "same-origin", cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network error", "the server cannot be reached (" + e.message + ")");
  }
  if (!res.ok) {
    let error = res.statusText, detail = "";
    const text = await res.text();
    try {
      const doc = JSON.parse(text);
      error = doc.error || error;
      detail = doc.detail || "";
    } catch (_) {
      // an error document (HTML) says nothing the page can show
      if (!/html/i.test(res.headers.get("Content-Type") || "")) detail = text.trim().slice(0, 300);
    }
    if (res.status === 401 && !detail) detail = "log in first";
    throw new ApiError(res.status, error, detail);
  }
  return res;
}

export async function apiJson(path, opts) {
  return (await api(path, opts)).json();
}

export function postJson(path, obj) {
  return api(path, { method: "POST", body: JSON.stringify(obj), type: "application/json" });
}

export function setStatus(el, text, kind) {
  el.textContent = text || "";
  el.classList.remove("error", "success");
  if (kind) el.classList.add(kind);
}

// A visible download link for bytes made in the page (a Blob URL, so
// nothing leaves the browser).
export function offerDownload(container, bytes, filename, mime, label) {
  const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
  container.textContent = "";
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.className = "button";
  a.textContent = label || "Save " + filename;
  container.append(a);
  container.hidden = false;
  a.focus();
  return a;
}

// The password of a PKCS#12: the server's one rule (api/certs
// "password_rule", from mod_certauth/core/ca_password.c), applied here with
// its own words; the same twice.  Returns "" when fine, else what is wrong.
export function passwordProblem(rule, pw, again, login) {
  const chars = Array.from(pw);
  const m = rule.messages;
  if (chars.length < rule.min_length) return m.too_short;
  if (chars.length > rule.max_length) return m.too_long;
  const kinds = [/[A-Za-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
  if (kinds < rule.min_kinds && chars.length < rule.any_kinds_from) return m.kinds;
  if (new Set(chars).size < rule.min_distinct) return m.distinct;
  const low = pw.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (rule.common.some((w) => low.includes(w) && chars.length < w.length + rule.common_margin)) return m.guessable;
  if (login && login.length >= rule.min_login &&
      low.includes(login.replace(/[A-Z]/g, (c) => c.toLowerCase()))) return m.login;
  if (again !== undefined && pw !== again) return "The two passwords differ.";
  return "";
}

// Who is asking, the password rule and the limit of certificates, from
// api/certs (profile: the one a request would use; "" for the default).
export function whoAmI(profile) {
  return apiJson("api/certs?limit=1" + (profile ? "&profile=" + encodeURIComponent(profile) : ""));
}

// The rule's text into every [data-password-rule] element.
export function showRule(rule) {
  for (const el of $$("[data-password-rule]")) el.textContent = rule.text;
}

// "You have N of M valid certificates" (with a link to My certificates)
// into el; returns true when the limit is reached.
export function showQuota(el, quota) {
  el.textContent = "";
  const link = document.createElement("a");
  link.href = "mycerts.html";
  link.textContent = "My certificates";
  if (!quota) {
    el.append("Your certificates, to download, renew or revoke: ", link, ".");
    return false;
  }
  const full = quota.valid >= quota.max;
  el.append("You have " + quota.valid + " of " + quota.max + " valid certificates" +
    (quota.profile && quota.profile !== "default" ? " of profile " + quota.profile : "") +
    (full ? ": the most you may have. Revoke one you no longer use in " : ". See them in "), link,
    full ? " first, then come back." : ".");
  el.classList.toggle("error", full);
  return full;
}

// Live feedback under a password pair (rule: a function returning the
// rule, or null while it is not loaded).
export function watchPasswords(pw, again, out, login, rule) {
  const update = () => {
    const r = rule();
    if (!pw.value || !r) { setStatus(out, ""); return; }
    const p = passwordProblem(r, pw.value, again.value ? again.value : undefined, login && login());
    out.className = "hint " + (p ? "strength-weak" : "strength-ok");
    out.textContent = p || (again.value ? "Strong enough, and both entries match." : "Strong enough; type it again below.");
  };
  pw.addEventListener("input", update);
  again.addEventListener("input", update);
}

export function fmtDate(iso) {
  return iso ? iso.replace("T", " ").replace("Z", " UTC") : "";
}

export function bytesFromResponse(res) {
  return res.arrayBuffer().then((b) => new Uint8Array(b));
}
