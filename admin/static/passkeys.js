// Passkeys (admin/passkeys.py): the browser's own WebAuthn API, driven from two places.
// - My account, #passkey-add-form: ask the server for creation options (the name typed), let the
//   browser create the passkey, send its answer back; the page reloads with the outcome.
// - The second step of signing in, #passkey-sign-in: ask for request options (this user's passkeys
//   only), let the browser sign the challenge, send the answer; on success, go where sign-in leads.
// The server's refusals come as {"error": "<sentence>"}; they are shown as they are, in the page's
// language. Binary fields travel as base64url, as py_webauthn writes and reads them.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i += 1) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: toBytes(item.id), transports: item.transports };
    });
  }

  // A refusal of the server: its sentence, or the page's own when the answer is no JSON (a 403 page).
  function Refusal(message) {
    this.message = message;
  }

  function post(url, body, fallback) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token, Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          if (!response.ok) {
            throw new Refusal(data.error || fallback);
          }
          return data;
        });
    });
  }

  function show(box, message) {
    box.textContent = message;
    box.hidden = false;
    box.classList.remove("d-none");
  }

  function explain(error, holder) {
    if (error instanceof Refusal) {
      return error.message;
    }
    // The browser's own refusals: cancelled, timed out, or no matching passkey on this device.
    return holder.getAttribute("data-cancelled");
  }

  function supported() {
    return Boolean(window.PublicKeyCredential && navigator.credentials);
  }

  var addForm = document.getElementById("passkey-add-form");
  if (addForm) {
    var addError = document.getElementById("passkey-error");
    var addButton = document.getElementById("passkey-add");
    addForm.addEventListener("submit", function (event) {
      event.preventDefault();
      addError.hidden = true;
      if (!supported()) {
        show(addError, addForm.getAttribute("data-unsupported"));
        return;
      }
      var refused = addForm.getAttribute("data-refused");
      var name = document.getElementById("passkey-name").value;
      var challenge = "";
      addButton.disabled = true;
      post(addForm.getAttribute("data-options-url"), { name: name }, refused)
        .then(function (data) {
          challenge = data.challenge;
          var options = data.publicKey;
          options.challenge = toBytes(options.challenge);
          options.user.id = toBytes(options.user.id);
          options.excludeCredentials = descriptors(options.excludeCredentials);
          return navigator.credentials.create({ publicKey: options });
        })
        .then(function (credential) {
          var response = credential.response;
          var answer = {
            id: credential.id,
            rawId: toText(credential.rawId),
            type: credential.type,
            authenticatorAttachment: credential.authenticatorAttachment || undefined,
            clientExtensionResults: credential.getClientExtensionResults(),
            response: {
              clientDataJSON: toText(response.clientDataJSON),
              attestationObject: toText(response.attestationObject),
              transports: response.getTransports ? response.getTransports() : [],
            },
          };
          return post(addForm.getAttribute("data-register-url"), { challenge: challenge, credential: answer }, refused);
        })
        .then(function (data) {
          window.location.assign(data.redirect);
        })
        .catch(function (error) {
          show(addError, explain(error, addForm));
          addButton.disabled = false;
        });
    });
  }

  var signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    var signInError = document.getElementById("passkey-error");
    var useButton = document.getElementById("use-passkey");
    useButton.addEventListener("click", function () {
      signInError.hidden = true;
      if (!supported()) {
        show(signInError, signIn.getAttribute("data-unsupported"));
        return;
      }
      var url = signIn.getAttribute("data-url");
      var refused = signIn.getAttribute("data-refused");
      var challenge = "";
      useButton.disabled = true;
      post(url, { step: "options" }, refused)
        .then(function (data) {
          challenge = data.challenge;
          var options = data.publicKey;
          options.challenge = toBytes(options.challenge);
          options.allowCredentials = descriptors(options.allowCredentials);
          return navigator.credentials.get({ publicKey: options });
        })
        .then(function (credential) {
          var response = credential.response;
          var answer = {
            id: credential.id,
            rawId: toText(credential.rawId),
            type: credential.type,
            authenticatorAttachment: credential.authenticatorAttachment || undefined,
            clientExtensionResults: credential.getClientExtensionResults(),
            response: {
              clientDataJSON: toText(response.clientDataJSON),
              authenticatorData: toText(response.authenticatorData),
              signature: toText(response.signature),
              userHandle: response.userHandle ? toText(response.userHandle) : undefined,
            },
          };
          var body = { step: "verify", challenge: challenge, credential: answer, next: signIn.getAttribute("data-next") };
          return post(url, body, refused);
        })
        .then(function (data) {
          window.location.assign(data.redirect);
        })
        .catch(function (error) {
          show(signInError, explain(error, signIn));
          useButton.disabled = false;
        });
    });
  }
})();
