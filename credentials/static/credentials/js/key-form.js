// Checks Stripe keys as they are typed, with the server's rules and the server's own words:
// the messages come from credentials/providers/stripe_keys.py through the page (json_script
// "key-form-rules"), and the server decides. Nothing typed here leaves the page before the
// form is submitted.
(function () {
  "use strict";
  var form = document.getElementById("key-form");
  var rulesScript = document.getElementById("key-form-rules");
  if (!form || !rulesScript) return;
  var rules = JSON.parse(rulesScript.textContent);
  // A provider whose keys only the server checks sends no rules.
  if (!rules.messages) return;
  var MESSAGES = rules.messages;
  var PREFIXED = /^(pk|sk|rk)_(test|live)_([\s\S]*)$/;
  var TYPE = { pk: "publishable", sk: "secret", rk: "restricted" };
  // The characters Python's str.strip() removes, so both sides trim a key alike.
  var EDGE_SPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

  function message(name, values) {
    return MESSAGES[name].replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? String(values[key]) : whole;
    });
  }

  // Return {error} or {type, mode} for `value` typed in field `name`, as stripe_keys._parse.
  function check(value, name) {
    var field = rules.fields[name];
    var words = { field: field.name, expected: field.expected };
    var wantsPublishable = name === "publishable_key";
    value = value.replace(EDGE_SPACE, "");
    if (!value) return {};
    var length = Array.from(value).length;
    if (length > rules.max_length) {
      words.length = length;
      words.max_length = rules.max_length;
      return { error: message("too_long", words) };
    }
    if (/[^\x00-\x7f]/.test(value)) return { error: message("non_ascii", {}) };
    if (/[\x00-\x20\x7f]/.test(value)) {
      // Text with spaces that is not a key at all gets the message about what a key looks like.
      if (!/^[psr]k_/.test(value)) return { error: message("not_a_stripe_key", words) };
      return { error: message("inner_whitespace", {}) };
    }
    if (/^["'`]|["'`]$/.test(value)) return { error: message("quoted", {}) };
    if (/^gAAAAA[A-Za-z0-9_\-]+=*$/.test(value)) return { error: message("encrypted_value", words) };
    var match = PREFIXED.exec(value);
    if (!match) return { error: message("not_a_stripe_key", words) };
    var type = TYPE[match[1]];
    if (wantsPublishable !== (type === "publishable")) {
      return { error: type === "publishable"
        ? message("publishable_in_secret_field", {})
        : message("secret_in_publishable_field", { key_type: type }) };
    }
    var body = match[3], prefix = match[1] + "_" + match[2] + "_";
    if (!body) return { error: message("only_the_prefix", { prefix: prefix }) };
    if (!/^[A-Za-z0-9]+$/.test(body)) return { error: message("invalid_characters", { prefix: prefix }) };
    if (body.length < rules.min_body_length) {
      return { error: message("too_short", {
        prefix: prefix, min_body_length: rules.min_body_length, body_length: body.length
      }) };
    }
    if (type === "secret" && rules.secret_key_policy === "refuse") {
      return { error: rules.secret_key_refused };
    }
    return { type: type, mode: match[2] };
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

  var names = ["publishable_key", "secret_key"];
  function refresh() {
    var results = {};
    names.forEach(function (name) { results[name] = check(form.elements[name].value, name); });
    var publishable = results.publishable_key, secret = results.secret_key;
    var mismatch = publishable.mode && secret.mode && publishable.mode !== secret.mode;
    if (mismatch) {
      secret = { error: message("mode_mismatch", {
        secret_type: secret.type,
        secret_mode: secret.mode,
        publishable_mode: publishable.mode,
        test_mode_switch: secret.mode === "live" ? "off" : "on"
      }) };
      // Either key may be the wrong one: neither is shown as valid.
      publishable = { mismatch: true };
    }
    results = { publishable_key: publishable, secret_key: secret };
    names.forEach(function (name) {
      var input = form.elements[name], result = results[name];
      // What the server said stays until the person changes the field.
      if (!input.dataset.edited) return;
      if (result.error) show(name, "error", result.error);
      else show(name, result.mode ? "valid" : "", "");
    });
  }
  names.forEach(function (name) {
    var input = form.elements[name];
    input.addEventListener("input", function () { input.dataset.edited = "1"; refresh(); });
  });

  // The restricted-key permissions beside the form: only those of the chosen integrations
  // (all of them while none is chosen).
  var groups = document.querySelectorAll("#permission-checklist [data-integration]");
  var boxes = form.querySelectorAll("input[name=requested_integrations]");
  function showPermissions() {
    var chosen = {};
    var any = false;
    boxes.forEach(function (box) { if (box.checked) { chosen[box.value] = true; any = true; } });
    groups.forEach(function (group) {
      group.hidden = any && !chosen[group.dataset.integration];
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", showPermissions); });
  showPermissions();
})();
