// Passkeys (WebAuthn): the browser's part of a ceremony. The server makes the options
// and checks the answer; this file only turns JSON into what navigator.credentials
// takes and its answer back into JSON, then submits the page's own form with it.
(function () {
  "use strict";
  function toBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creation(o) {
    var p = o.publicKey;
    p.challenge = toBuf(p.challenge);
    p.user.id = toBuf(p.user.id);
    (p.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return o;
  }
  function request(o) {
    var p = o.publicKey;
    p.challenge = toBuf(p.challenge);
    (p.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return o;
  }
  function answer(c) {
    var r = c.response;
    var out = {
      id: c.id,
      rawId: toB64(c.rawId),
      type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (r.attestationObject) { out.response.attestationObject = toB64(r.attestationObject); }
    if (r.authenticatorData) {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64(r.userHandle); }
    }
    return JSON.stringify(out);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-ceremony]") : null;
    if (!button) { return; }
    event.preventDefault();
    var box = button.closest("[data-passkey]");
    var form = box.tagName === "FORM" ? box : box.querySelector("form");
    var status = box.querySelector(".passkey-status");
    function say(text) { if (status) { status.textContent = text; } }
    if (!window.PublicKeyCredential) {
      say("This browser does not support passkeys.");
      return;
    }
    var options = button.getAttribute("data-options")
      ? Promise.resolve(JSON.parse(button.getAttribute("data-options")))
      : fetch(button.getAttribute("data-begin"), {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(new FormData(form)).toString()
        }).then(function (r) {
          if (!r.ok) { throw new Error("the server refused (" + r.status + ")"); }
          return r.json();
        }).then(function (o) {
          // A ceremony the form must name when it answers: {ceremony, options}.
          if (o.ceremony && o.options) {
            form.querySelector("input[data-ceremony-token]").value = o.ceremony;
            return o.options;
          }
          return o;
        });
    // A form that can also go the page way (adding a passkey): when the server will
    // not begin here (say, "Confirm it's you" is due first), it goes that way.
    var fallback = button.getAttribute("data-finish") ? options.catch(function (e) {
      form.submit();
      throw e;
    }) : options;
    say("Follow your browser's instructions…");
    fallback.then(function (o) {
      return button.getAttribute("data-ceremony") === "create"
        ? navigator.credentials.create(creation(o))
        : navigator.credentials.get(request(o));
    }).then(function (credential) {
      var field = form.querySelector("input[data-credential]") ||
        form.querySelector("input[name=credential]");
      field.value = answer(credential);
      if (button.getAttribute("data-finish")) {
        form.action = button.getAttribute("data-finish");
      }
      form.submit();
    }).catch(function (e) {
      say("The passkey was not used: " + (e && e.message ? e.message : e));
    });
  });
})();
