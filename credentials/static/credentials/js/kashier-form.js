// Checks Kashier's merchant ID and keys as they are typed, with the server's rules and the
// server's own words: the messages, shapes and patterns come from
// credentials/providers/kashier_keys.py through the page (json_script "key-form-rules"), and
// the server decides. The order of the checks is kashier_keys' own. Nothing typed here leaves
// the page before the form is submitted.
(function () {
  "use strict";
  var form = document.getElementById("key-form");
  var rulesScript = document.getElementById("key-form-rules");
  if (!form || !rulesScript) return;
  var rules = JSON.parse(rulesScript.textContent);
  if (!rules.messages || !rules.patterns) return;
  var MESSAGES = rules.messages;
  var PATTERNS = {};
  Object.keys(rules.patterns).forEach(function (name) {
    PATTERNS[name] = new RegExp(rules.patterns[name].source, rules.patterns[name].flags);
  });
  // What Python's str.strip() removes, so both sides trim a value alike.
  var EDGE_SPACE = new RegExp("^" + rules.whitespace + "+|" + rules.whitespace + "+$", "g");

  function message(name, values) {
    var all = Object.assign({}, rules.shapes, values);
    return MESSAGES[name].replace(/\{(\w+)\}/g, function (whole, key) {
      return key in all ? String(all[key]) : whole;
    });
  }

  // Return the refusal any field makes of the trimmed `value` (kashier_keys._checked), or "".
  function anyFieldRefusal(value, words) {
    if (PATTERNS.fernet_token.test(value)) return message("encrypted_value", words);
    var length = Array.from(value).length;
    if (length > rules.max_length) {
      return message("too_long", Object.assign({ length: length, max_length: rules.max_length }, words));
    }
    if (/[^\x00-\x7f]/.test(value)) return message("non_ascii", words);
    if (rules.quotes.indexOf(value.charAt(0)) !== -1 ||
        rules.quotes.indexOf(value.charAt(value.length - 1)) !== -1) {
      return message("quoted", words);
    }
    if (PATTERNS.bearer.test(value)) return message("bearer_prefix", words);
    if (value.indexOf("\\$") !== -1) return message("escaped_dollar", {});
    if (PATTERNS.stripe_key.test(value)) return message("stripe_key", words);
    // ASCII by now: what Python counts as whitespace or unprintable there.
    if (/[\x00-\x20\x7f]/.test(value)) return message("inner_whitespace", words);
    return "";
  }

  // Each field's own refusals, after those of any field (kashier_keys.parse_<field>).
  var REFUSALS = {
    merchant_id: function (value, words) {
      if (PATTERNS.looks_like_a_secret_key.test(value)) {
        return message("key_in_merchant_id_field", { key_name: rules.fields.secret_key.field });
      }
      if (PATTERNS.payment_api_key.test(value)) {
        return message("key_in_merchant_id_field", { key_name: rules.fields.payment_api_key.field });
      }
      if (!PATTERNS.merchant_id.test(value)) return message("not_a_merchant_id", words);
      return "";
    },
    secret_key: function (value, words) {
      if (PATTERNS.payment_api_key.test(value)) return message("payment_api_key_in_secret_field", {});
      if (PATTERNS.merchant_id.test(value)) return message("merchant_id_in_key_field", words);
      if (PATTERNS.incomplete_secret_key.test(value)) return message("incomplete_secret_key", words);
      if (!PATTERNS.secret_key.test(value)) return message("not_a_kashier_secret_key", words);
      return "";
    },
    payment_api_key: function (value, words) {
      if (PATTERNS.looks_like_a_secret_key.test(value)) return message("secret_key_in_payment_field", {});
      if (PATTERNS.merchant_id.test(value)) return message("merchant_id_in_key_field", words);
      if (!PATTERNS.payment_api_key.test(value)) return message("not_a_payment_api_key", words);
      return "";
    }
  };

  // Return {error}, {valid: true}, or {} for an empty field, for `value` typed in `name`.
  function check(value, name) {
    var words = rules.fields[name];
    value = value.replace(EDGE_SPACE, "");
    if (!value) return {};
    var error = anyFieldRefusal(value, words) || REFUSALS[name](value, words);
    return error ? { error: error } : { valid: true };
  }

  // Show `state` ("error", "valid" or "" for neither) and `error` on field `name`: never the
  // valid state beside an error, and aria-invalid exactly while there is an error.
  function show(name, state, error) {
    var input = form.elements[name];
    var box = document.getElementById("field-" + name);
    var out = document.getElementById(input.id + "_error");
    var describedBy = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== out.id;
    });
    out.textContent = error || "";
    box.classList.toggle("has-error", state === "error");
    box.classList.toggle("valid", state === "valid");
    if (state === "error") {
      input.setAttribute("aria-invalid", "true");
      describedBy.push(out.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (describedBy.length) input.setAttribute("aria-describedby", describedBy.join(" "));
    else input.removeAttribute("aria-describedby");
  }

  Object.keys(REFUSALS).forEach(function (name) {
    var input = form.elements[name];
    if (!input) return;
    // What the server said stays until the person changes the field.
    input.addEventListener("input", function () {
      var result = check(input.value, name);
      if (result.error) show(name, "error", result.error);
      else show(name, result.valid ? "valid" : "", "");
    });
  });
})();
