// pkcs12.js: the fallback for browsers that cannot make keys (no
// WebCrypto): the server makes the key and returns a PKCS#12 protected by
// the password sent.  Plain ES5 and XMLHttpRequest, for old browsers.
(function () {
  "use strict";
  var form = document.getElementById("pkcs12-form");
  var status = document.getElementById("pkcs12-status");
  var progress = document.getElementById("pkcs12-progress");
  var download = document.getElementById("pkcs12-download");
  var button = document.getElementById("pkcs12-button");

  function say(text, kind) {
    status.textContent = text;
    status.className = "status" + (kind ? " " + kind : "");
  }

  // the same rules as the other pages (common.js passwordProblem)
  function problem(pw, again) {
    var kinds = 0, seen = {}, distinct = 0, i;
    if (pw.length < 10) return "Use at least 10 characters.";
    if (pw.length > 1024) return "Use at most 1024 characters.";
    if (/[a-z]/.test(pw)) kinds++;
    if (/[A-Z]/.test(pw)) kinds++;
    if (/[0-9]/.test(pw)) kinds++;
    if (/[^A-Za-z0-9]/.test(pw)) kinds++;
    if (kinds < 2 && pw.length < 16) return "Mix letters, digits or symbols, or use 16 characters or more.";
    for (i = 0; i < pw.length; i++) {
      if (!seen[pw.charAt(i)]) { seen[pw.charAt(i)] = 1; distinct++; }
    }
    if (distinct < 5) return "Use more different characters.";
    if (pw !== again) return "The two passwords differ.";
    return "";
  }

  function errorOf(xhr) {
    var text = "", doc;
    try {
      text = xhr.response && typeof xhr.response === "object" && "byteLength" in xhr.response
        ? String.fromCharCode.apply(null, new Uint8Array(xhr.response)) : String(xhr.responseText || "");
    } catch (e) { text = ""; }
    try {
      doc = JSON.parse(text);
      return xhr.status + " " + doc.error + (doc.detail ? ": " + doc.detail : "");
    } catch (e2) {
      return xhr.status ? xhr.status + " " + (xhr.statusText || "error") : "the server cannot be reached";
    }
  }

  function offer(bytes, name) {
    var blob = new Blob([bytes], { type: "application/x-pkcs12" });
    while (download.firstChild) download.removeChild(download.firstChild);
    if (window.navigator && window.navigator.msSaveOrOpenBlob) {
      window.navigator.msSaveOrOpenBlob(blob, name);
      return;
    }
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.setAttribute("download", name);
    a.className = "button";
    a.appendChild(document.createTextNode("Save " + name));
    download.appendChild(a);
    download.hidden = false;
    a.focus();
  }

  form.onsubmit = function (ev) {
    ev.preventDefault();
    var pw = document.getElementById("fb-password").value;
    var p = problem(pw, document.getElementById("fb-password2").value);
    if (p) { say(p, "error"); document.getElementById("fb-password").focus(); return false; }
    var body = { password: pw, key_type: document.getElementById("fb-key-type").value };
    if (document.getElementById("fb-legacy").checked) body.legacy = true;
    var prof = document.getElementById("fb-profile").value.replace(/^\s+|\s+$/g, "");
    if (prof) body.profile = prof;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "pkcs12", true);
    xhr.responseType = "arraybuffer";
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) return;
      button.disabled = false;
      progress.hidden = true;
      if (xhr.status === 201) {
        var loc = xhr.getResponseHeader("Location") || "";
        var serial = loc.substring(loc.lastIndexOf("/") + 1);
        offer(xhr.response, "certificate-" + (serial.substring(0, 8) || "new") + ".p12");
        say("Done: certificate " + serial + ". Save the file and import it with the password you chose.", "success");
        form.reset();
      } else {
        say("Failed: " + errorOf(xhr), "error");
      }
    };
    button.disabled = true;
    progress.hidden = false;
    say("The server is making your key and certificate…");
    xhr.send(JSON.stringify(body));
    return false;
  };
}());
