// Progressive enhancement for a few pages; each works without this file.
(function () {
  // Profile › Time zone: with none stored, choose the browser's (the person saves it).
  var zoneSelect = document.querySelector("select[data-browser-time-zone]");
  if (zoneSelect && window.Intl && Intl.DateTimeFormat) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var known = zone && Array.prototype.some.call(zoneSelect.options, function (o) {
      return o.value === zone;
    });
    if (known) {
      zoneSelect.value = zone;
      var note = document.querySelector(".browser-zone");
      if (note) {
        note.hidden = false;
      }
    }
  }
})();

// Copy buttons (a TOTP key, recovery codes): shown only where the script runs.
(function () {
  if (window.doormanCopy) {
    return;
  }
  window.doormanCopy = true;
  function show() {
    document.querySelectorAll("button[data-copy]").forEach(function (b) {
      b.hidden = !(navigator.clipboard && navigator.clipboard.writeText);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", show);
  } else {
    show();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) {
      return;
    }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Select and copy it instead";
    });
    setTimeout(function () { button.textContent = label; }, 2500);
  });
})();
