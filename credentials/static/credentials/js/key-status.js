// Follows a key's verification on its page: while the provider has not answered, asks the key's
// status address now and then; once the answer is in, swaps in the page's new status block
// and says what the provider answered. Without JavaScript the page's Refresh link does the same.
(function () {
  "use strict";
  var block = document.getElementById("key-status");
  if (!block || !block.hasAttribute("data-waiting") || !window.fetch) return;
  var statusUrl = block.getAttribute("data-status-url");
  var news = document.getElementById("key-status-news");
  var delay = 1500, MAX_DELAY = 10000;
  // A worker may be down for a while; the page stops asking after this and the link remains.
  var giveUpAt = Date.now() + 30 * 60 * 1000;

  function later() {
    if (Date.now() > giveUpAt) return;
    window.setTimeout(ask, delay);
    delay = Math.min(Math.round(delay * 1.5), MAX_DELAY);
  }

  function showOutcome(status) {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("page " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("key-status");
        if (!fresh) throw new Error("no status block");
        block.replaceWith(document.importNode(fresh, true));
        if (news) news.textContent = status.provider + " answered: " + status.verification_label + ". " + status.status_label + ".";
      })
      .catch(function () { window.location.reload(); });
  }

  function ask() {
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (status) {
        if (status.waiting) later();
        else showOutcome(status);
      })
      .catch(later);
  }

  later();
})();
