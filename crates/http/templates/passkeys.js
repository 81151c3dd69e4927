// Passkeys on the pages: the browser's side of a WebAuthn ceremony. The
// content security policy allows no inline script, so the pages mark their
// forms and this file does the rest:
//
// - `form[data-passkey="create"]` registers a passkey: on submit it asks
//   `data-options-url` (a POST with the form's CSRF token) for the options,
//   lets the browser create the passkey, and sends the form with the answer
//   in its `credential` field and the options' `registration_token`.
// - `form[data-passkey="get"]` answers a challenge: its `data-options` hold
//   the options; its `[data-passkey-button]` (a plain button, so Enter in
//   a code field still sends the code) asks the browser for the passkey,
//   puts the answer into the field named by `data-answer-field` and sends
//   the form. The code field stays empty then, so the script checks the
//   form's other required fields (those without `data-code`) itself.
//
// Binary fields travel as unpadded base64url, as the server expects.
(function () {
  "use strict";

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var bytes = atob(base64);
    var out = new Uint8Array(bytes.length);
    for (var i = 0; i < bytes.length; i++) { out[i] = bytes.charCodeAt(i); }
    return out.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeCredentials(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = fromBase64url(c.id);
      return copy;
    });
  }

  function creationOptions(options) {
    var key = Object.assign({}, options.publicKey);
    key.challenge = fromBase64url(key.challenge);
    key.user = Object.assign({}, key.user, { id: fromBase64url(key.user.id) });
    key.excludeCredentials = decodeCredentials(key.excludeCredentials);
    return { publicKey: key };
  }

  function requestOptions(options) {
    var key = Object.assign({}, options.publicKey);
    key.challenge = fromBase64url(key.challenge);
    key.allowCredentials = decodeCredentials(key.allowCredentials);
    return { publicKey: key };
  }

  function registrationAnswer(credential) {
    return JSON.stringify({
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64url(credential.response.attestationObject),
        clientDataJSON: toBase64url(credential.response.clientDataJSON)
      }
    });
  }

  function authenticationAnswer(credential) {
    var response = credential.response;
    return JSON.stringify({
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toBase64url(response.authenticatorData),
        clientDataJSON: toBase64url(response.clientDataJSON),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null
      }
    });
  }

  // What the person reads when the browser says no.
  function explain(form, error) {
    var box = form.querySelector("[data-passkey-error]");
    if (!box) { return; }
    var name = error && error.name;
    if (name === "server" && error.message) {
      box.textContent = error.message;
    } else if (name === "NotAllowedError" || name === "AbortError") {
      box.textContent = "No passkey was used: the request was cancelled or timed out. Try again.";
    } else if (name === "InvalidStateError") {
      box.textContent = "This passkey is registered already. Use another key or device.";
    } else if (name === "NotSupportedError" || name === "SecurityError") {
      box.textContent = "This browser cannot use passkeys at this address. Use a code instead.";
    } else {
      box.textContent = "The passkey did not work (" + (name || "error") + "). Try again.";
    }
    box.hidden = false;
  }

  function field(form, name) {
    return form.querySelector('[name="' + name + '"]');
  }

  function busy(form, on) {
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = on; }
  }

  function register(form) {
    if (!window.PublicKeyCredential) {
      explain(form, { name: "NotSupportedError" });
      return;
    }
    busy(form, true);
    var body = new URLSearchParams();
    body.set("csrf", field(form, "csrf").value);
    fetch(form.getAttribute("data-options-url"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (answer) {
      return answer.json().catch(function () {
        throw { name: "server", message: "The server did not answer as expected. Reload the page." };
      }).then(function (json) {
        if (!answer.ok) { throw { name: "server", message: json.message }; }
        return json;
      });
    }).then(function (started) {
      field(form, "registration_token").value = started.registration_token;
      return navigator.credentials.create(creationOptions(started.options));
    }).then(function (credential) {
      field(form, "credential").value = registrationAnswer(credential);
      form.submit();
    }).catch(function (error) {
      busy(form, false);
      explain(form, error);
    });
  }

  function answer(form) {
    if (!window.PublicKeyCredential) {
      explain(form, { name: "NotSupportedError" });
      return;
    }
    busy(form, true);
    var options = JSON.parse(form.getAttribute("data-options"));
    navigator.credentials.get(requestOptions(options)).then(function (credential) {
      field(form, form.getAttribute("data-answer-field")).value = authenticationAnswer(credential);
      form.submit();
    }).catch(function (error) {
      busy(form, false);
      explain(form, error);
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute && form.getAttribute("data-passkey") === "create") {
      event.preventDefault();
      register(form);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-passkey-button]");
    var form = button && button.form;
    if (!form || form.getAttribute("data-passkey") !== "get") { return; }
    event.preventDefault();
    var fields = form.querySelectorAll("input[required]:not([data-code])");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].checkValidity()) { fields[i].reportValidity(); return; }
    }
    answer(form);
  });
}());
