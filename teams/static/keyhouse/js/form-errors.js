// The summary of a form's errors (templates/_form_errors.html): focus moves to it when the page
// loads, so a screen reader reads what went wrong; each link moves to its field.
(function () {
  "use strict";
  var summary = document.querySelector(".error-summary");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", function (event) {
    var link = event.target.closest("a[href^='#']");
    if (!link) return;
    var target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    // A group of checkboxes is linked by its container: its first box takes the focus.
    var field = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
    if (!field) return;
    event.preventDefault();
    var box = field.closest(".field") || field;
    box.scrollIntoView({ block: "start" });
    field.focus({ preventScroll: true });
  });
})();
