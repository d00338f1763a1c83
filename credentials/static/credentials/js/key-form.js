// Checks Stripe keys as they are typed, with the same rules as the server (which decides).
// Nothing typed here leaves the page before the form is submitted.
(function () {
  "use strict";
  var form = document.getElementById("key-form");
  if (!form) return;
  var MIN_BODY = 24, MAX_LENGTH = 255;
  var PREFIXED = /^(pk|sk|rk)_(test|live)_(.*)$/;
  var KIND = { pk: "publishable", sk: "secret", rk: "restricted" };

  function check(value, wanted) {
    value = value.trim();
    if (!value) return { error: "" };
    if (value.length > MAX_LENGTH) return { error: "This is longer than any Stripe key (" + MAX_LENGTH + " characters at most). Check that only the key was pasted." };
    if (/[^\x00-\x7F]/.test(value)) return { error: "This contains characters that Stripe keys never have (such as accented letters or curly quotes). Copy the key again from the Stripe dashboard." };
    var expected = wanted === "publishable" ? "pk_test_ or pk_live_" : "sk_test_, sk_live_, rk_test_ or rk_live_";
    var notAKey = "This is not a Stripe " + (wanted === "publishable" ? "publishable" : "secret") + " key: it should start with " + expected + ".";
    if (/[\s\x00-\x1F\x7F]/.test(value)) {
      if (!/^[psr]k_/.test(value)) return { error: notAKey };
      return { error: "This contains a space or line break inside the key. Paste the key again as one unbroken line." };
    }
    if (/^["'`]|["'`]$/.test(value)) return { error: "This has quotation marks around the key. Remove the quotation marks, then paste the key again." };
    if (/^gAAAAA[A-Za-z0-9_\-]+=*$/.test(value)) return { error: "This looks like an encrypted value, not a Stripe key." };
    var match = PREFIXED.exec(value);
    if (!match) return { error: notAKey };
    var kind = KIND[match[1]];
    var isWanted = wanted === "publishable" ? kind === "publishable" : kind !== "publishable";
    if (!isWanted) {
      return { error: kind === "publishable"
        ? "This is a publishable key; paste it in the publishable key field."
        : "This is a " + kind + " key; paste it in the secret key field." };
    }
    if (!match[3]) return { error: "This is only the beginning of a key (“" + match[1] + "_" + match[2] + "_”). Copy the whole key with the dashboard's copy button and paste it again." };
    if (!/^[A-Za-z0-9]+$/.test(match[3])) return { error: "After “" + match[1] + "_" + match[2] + "_” a Stripe key has only letters and digits." };
    if (match[3].length < MIN_BODY) return { error: "This key is too short: it needs at least " + MIN_BODY + " letters and digits after “" + match[1] + "_" + match[2] + "_”." };
    return { error: "", mode: match[2] };
  }

  var fields = { publishable_key: "publishable", secret_key: "secret" };
  function refresh() {
    var modes = {};
    Object.keys(fields).forEach(function (name) {
      var input = form.elements[name];
      var box = document.getElementById("field-" + name);
      var out = form.querySelector('.live-error[data-for="' + name + '"]');
      var result = check(input.value, fields[name]);
      if (input.value.trim() || input.dataset.touched) {
        out.textContent = result.error;
        box.classList.toggle("has-error", !!result.error);
        box.classList.toggle("valid", !result.error && !!result.mode);
      }
      modes[name] = result.mode;
    });
    var secretOut = form.querySelector('.live-error[data-for="secret_key"]');
    if (modes.publishable_key && modes.secret_key && modes.publishable_key !== modes.secret_key && !secretOut.textContent) {
      secretOut.textContent = "The secret key is a " + modes.secret_key + " key but the publishable key is a " + modes.publishable_key + " key. Use both keys from the same mode.";
      document.getElementById("field-secret_key").classList.add("has-error");
    }
  }
  Object.keys(fields).forEach(function (name) {
    var input = form.elements[name];
    input.addEventListener("input", refresh);
    input.addEventListener("blur", function () { input.dataset.touched = "1"; refresh(); });
  });
})();
