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
      detail = text.trim().slice(0, 300);
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

// The password of a PKCS#12: at least 10 characters, not one kind of
// character only unless 16 or more, not a well-known password, not the
// login; the same twice.  Returns "" when fine, else what is wrong.
const COMMON = ["password", "passw0rd", "123456789", "1234567890", "qwertyuiop",
  "azertyuiop", "iloveyou", "letmein", "welcome", "certificate", "changeit", "secret"];

export function passwordProblem(pw, again, login) {
  if (pw.length < 10) return "Use at least 10 characters.";
  if (pw.length > 1024) return "Use at most 1024 characters.";
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
  if (kinds < 2 && pw.length < 16) return "Mix letters, digits or symbols, or use 16 characters or more.";
  if (new Set(pw).size < 5) return "Use more different characters.";
  const low = pw.toLowerCase();
  if (COMMON.some((w) => low.includes(w) && low.length < w.length + 6)) return "This password is too easy to guess.";
  if (login && low.includes(login.toLowerCase())) return "Do not use your login in the password.";
  if (again !== undefined && pw !== again) return "The two passwords differ.";
  return "";
}

// Live feedback under a password pair.
export function watchPasswords(pw, again, out, login) {
  const update = () => {
    if (!pw.value) { setStatus(out, ""); return; }
    const p = passwordProblem(pw.value, again.value ? again.value : undefined, login && login());
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
