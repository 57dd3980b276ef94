// pkcs12.js: the fallback for browsers that cannot make keys (no
// WebCrypto): the server makes the key and returns a PKCS#12 protected by
// the password sent.  Plain ES5 and XMLHttpRequest, for old browsers.  Like
// "Request a certificate": who is signed in, the server's password rule
// (api/certs "password_rule", applied here in its words), the limit of
// certificates before the form, the form sent once, the import steps.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var form = $("pkcs12-form");
  var status = $("pkcs12-status");
  var progress = $("pkcs12-progress");
  var download = $("pkcs12-download");
  var button = $("pkcs12-button");
  var again = $("pkcs12-again");
  var login = null, rule = null, full = false, busy = false, done = false;

  function say(text, kind) {
    status.textContent = text;
    status.className = "status" + (kind ? " " + kind : "");
  }

  function updateButton() {
    button.disabled = busy || done || full || !rule;
    again.hidden = !done || full;
  }

  function lower(s) {
    return s.replace(/[A-Z]/g, function (c) { return c.toLowerCase(); });
  }

  // code points, as the server counts characters
  function chars(s) {
    return s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\s\S]/g) || [];
  }

  // the server's rule (common.js passwordProblem does the same)
  function problem(pw, again2) {
    var c = chars(pw), m = rule.messages, kinds = 0, seen = {}, distinct = 0, i, low = lower(pw);
    if (c.length < rule.min_length) return m.too_short;
    if (c.length > rule.max_length) return m.too_long;
    if (/[A-Za-z]/.test(pw)) kinds++;
    if (/[0-9]/.test(pw)) kinds++;
    if (/[^A-Za-z0-9]/.test(pw)) kinds++;
    if (kinds < rule.min_kinds && c.length < rule.any_kinds_from) return m.kinds;
    for (i = 0; i < c.length; i++) {
      if (!seen.hasOwnProperty("k" + c[i])) { seen["k" + c[i]] = 1; distinct++; }
    }
    if (distinct < rule.min_distinct) return m.distinct;
    for (i = 0; i < rule.common.length; i++) {
      if (low.indexOf(rule.common[i]) >= 0 && c.length < rule.common[i].length + rule.common_margin) return m.guessable;
    }
    if (login && login.length >= rule.min_login && low.indexOf(lower(login)) >= 0) return m.login;
    if (again2 !== undefined && pw !== again2) return "The two passwords differ.";
    return "";
  }

  function text(node, s) {
    while (node.firstChild) node.removeChild(node.firstChild);
    node.appendChild(document.createTextNode(s));
  }

  // "You have N of M valid certificates" (common.js showQuota)
  function showQuota(q) {
    var el = $("quota"), a = document.createElement("a"), f;
    a.href = "mycerts.html";
    a.appendChild(document.createTextNode("My certificates"));
    while (el.firstChild) el.removeChild(el.firstChild);
    el.className = "";
    if (!q) {
      el.appendChild(document.createTextNode("Your certificates, to download, renew or revoke: "));
      el.appendChild(a);
      el.appendChild(document.createTextNode("."));
      return false;
    }
    f = q.valid >= q.max;
    el.appendChild(document.createTextNode("You have " + q.valid + " of " + q.max + " valid certificates" +
      (q.profile && q.profile !== "default" ? " of profile " + q.profile : "") +
      (f ? ": the most you may have. Revoke one you no longer use in " : ". See them in ")));
    el.appendChild(a);
    el.appendChild(document.createTextNode(f ? " first, then come back." : "."));
    if (f) el.className = "error";
    return f;
  }

  function get(url, done2) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url, true);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) return;
      var doc = null;
      try { doc = JSON.parse(xhr.responseText); } catch (e) { doc = null; }
      done2(xhr.status, doc);
    };
    xhr.send(null);
  }

  function refresh() {
    var prof = $("fb-profile").value.replace(/^\s+|\s+$/g, "");
    get("api/certs?limit=1" + (prof ? "&profile=" + encodeURIComponent(prof) : ""), function (st, doc) {
      var i, els;
      if (st === 200 && doc) {
        login = doc.owner || null;
        rule = doc.password_rule;
        els = document.querySelectorAll("[data-password-rule]");
        for (i = 0; i < els.length; i++) text(els[i], rule.text);
        if (login) text($("who"), "Signed in as " + login + ": the certificate will be issued to you.");
        full = showQuota(doc.quota);
      } else {
        text($("quota"), "Cannot check your certificates: " + st + (doc && doc.error ? " " + doc.error : ""));
        $("quota").className = "error";
      }
      updateButton();
    });
  }

  function errorOf(xhr) {
    var t = "", doc;
    try {
      t = xhr.response && typeof xhr.response === "object" && "byteLength" in xhr.response
        ? String.fromCharCode.apply(null, new Uint8Array(xhr.response)) : String(xhr.responseText || "");
    } catch (e) { t = ""; }
    try {
      doc = JSON.parse(t);
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

  function live() {
    var pw = $("fb-password").value, a2 = $("fb-password2").value, p, hint = $("fb-hint");
    if (!pw || !rule) { text(hint, ""); return; }
    p = problem(pw, a2 ? a2 : undefined);
    hint.className = "hint " + (p ? "strength-weak" : "strength-ok");
    text(hint, p || (a2 ? "Strong enough, and both entries match." : "Strong enough; type it again below."));
  }
  $("fb-password").oninput = live;
  $("fb-password2").oninput = live;
  var timer = null;
  $("fb-profile").oninput = function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  };
  again.onclick = function () {
    done = false;
    download.hidden = true;
    say("");
    updateButton();
    $("fb-password").focus();
  };

  form.onsubmit = function (ev) {
    ev.preventDefault();
    if (busy || done || full || !rule) return false;
    var pw = $("fb-password").value;
    var p = problem(pw, $("fb-password2").value);
    if (p) { say(p, "error"); $("fb-password").focus(); return false; }
    var body = { password: pw, key_type: $("fb-key-type").value };
    if ($("fb-legacy").checked) body.legacy = true;
    var prof = $("fb-profile").value.replace(/^\s+|\s+$/g, "");
    if (prof) body.profile = prof;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "pkcs12", true);
    xhr.responseType = "arraybuffer";
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) return;
      busy = false;
      progress.hidden = true;
      if (xhr.status === 201) {
        var loc = xhr.getResponseHeader("Location") || "";
        var serial = loc.substring(loc.lastIndexOf("/") + 1);
        // the server names the file: the CN and the serial ("alice-1A2B3C4D.p12")
        var cd = /filename="([^"]+)"/.exec(xhr.getResponseHeader("Content-Disposition") || "");
        offer(xhr.response, cd ? cd[1] : "certificate-" + (serial.substring(0, 8) || "new") + ".p12");
        say("Done: certificate " + serial + ". Save the file, then import it into your browser with the password you chose.", "success");
        form.reset();
        text($("fb-hint"), "");
        $("fb-profile").value = prof;
        $("after").hidden = false;
        done = true;
      } else {
        say("Failed: " + errorOf(xhr), "error");
      }
      refresh();
    };
    busy = true;
    updateButton();
    progress.hidden = false;
    say("The server is making your key and certificate…");
    xhr.send(JSON.stringify(body));
    return false;
  };
  updateButton();
  refresh();
}());
