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
