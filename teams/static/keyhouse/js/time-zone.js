// Tells the server the browser's time zone, once: base.html includes the form only while the
// account has no zone (a zone chosen on the account page is never overwritten).
(function () {
  "use strict";
  var form = document.getElementById("time-zone-detected");
  if (!form || !window.fetch || !window.Intl) return;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  var data = new FormData(form);
  data.append("time_zone", zone);
  fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
})();
