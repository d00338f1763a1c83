// The reveal page's Copy button (templates/admin/credentials/credential/revealed.html): copies
// the revealed secret to the clipboard. The secret is read from the page when the button is
// pressed and kept nowhere else; without the Clipboard API the button stays hidden and the key
// is selected and copied by hand.
(function () {
  "use strict";

  function say(status, words) {
    if (status) {
      status.textContent = words;
    }
  }

  function init() {
    if (!navigator.clipboard || !window.isSecureContext) {
      return;
    }
    document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
      var source = document.getElementById(button.dataset.copyFrom);
      var status = document.getElementById(button.dataset.copyStatus);
      if (!source) {
        return;
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent.trim()).then(
          function () {
            say(status, "Copied. Paste it where it is needed, then close this page.");
          },
          function () {
            say(status, "The browser did not allow copying: select the key and copy it by hand.");
          }
        );
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
