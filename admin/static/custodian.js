// Custodian: CSRF tokens for every state-changing request, and POST for actions and logout.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  var HEADER = "X-CSRF-Token";

  // jQuery requests (SQLAdmin's delete modal uses $.ajax with DELETE).
  if (window.jQuery) {
    window.jQuery.ajaxSetup({ headers: { "X-CSRF-Token": token } });

    // SQLAdmin gives the modal's Delete button its URL only on "shown", after the
    // fade-in; a click during the animation sent DELETE to the list page itself.
    // Bind the URL on "show", before the button can be seen, and drop it on close
    // so a stale URL can never be reused for another row.
    window.jQuery(document).on("show.bs.modal", "#modal-delete", function (event) {
      var trigger = window.jQuery(event.relatedTarget);
      var url = trigger.data("url");
      if (url) {
        window.jQuery("#modal-delete-button").attr("data-url", url);
      }
      describeDelete(trigger.data("name"), trigger.data("pk"));
      showDeleteError("");
    });
    window.jQuery(document).on("hidden.bs.modal", "#modal-delete", function () {
      window.jQuery("#modal-delete-button").removeAttr("data-url").removeAttr("aria-busy");
    });

    // The modal's button: our handler replaces SQLAdmin's (which writes an error page over the
    // document). On success the server has flashed what happened and the page reloads; on a
    // refusal the server's reason stays in the modal.
    document.addEventListener("click", function (event) {
      var button = event.target.closest("#modal-delete-button");
      if (!button) { return; }
      event.preventDefault();
      event.stopPropagation();
      var url = button.getAttribute("data-url");
      // Busy, not disabled: a disabled button drops the focus, and with it the modal's Escape key.
      if (!url || button.getAttribute("aria-busy") === "true") { return; }
      button.setAttribute("aria-busy", "true");
      showDeleteError("");
      window.jQuery.ajax({ url: url, method: "DELETE", headers: { Accept: "text/plain" } })
        .done(function (target) {
          var next = new URL(String(target).trim() || window.location.href, window.location.href);
          if (next.pathname === window.location.pathname) {
            window.location.reload();  // keep this list's search, filters and position
          } else {
            window.location.assign(next.href);
          }
        })
        .fail(function (request) {
          showDeleteError(refusalText(request));
          button.removeAttribute("aria-busy");
        });
    }, true);
  }

  function describeDelete(name, pk) {
    var subject = document.getElementById("modal-delete-subject");
    if (!subject) { return; }
    var pks = Array.isArray(pk) ? pk : (pk === undefined || pk === "" ? [] : [pk]);
    if (pks.length === 0) {
      subject.textContent = "No records are selected.";
    } else if (pks.length === 1) {
      subject.textContent = name + " " + pks[0] + " will be moved to the trash.";
    } else {
      subject.textContent = pks.length + " records (" + name + " " + pks.join(", ") + ") will be moved to the trash.";
    }
  }

  function showDeleteError(text) {
    var box = document.getElementById("modal-delete-error");
    if (!box) { return; }
    box.textContent = text;
    box.classList.toggle("d-none", !text);
  }

  // The sentence a refused request carries: plain text, or the #error-message of an error page.
  function refusalText(request) {
    if (!request.status) {
      return "The server could not be reached. Nothing was changed; try again.";
    }
    var type = request.getResponseHeader("Content-Type") || "";
    var text = request.responseText || "";
    if (type.indexOf("text/html") !== -1) {
      var page = new DOMParser().parseFromString(text, "text/html");
      var message = page.getElementById("error-message") || page.querySelector("p");
      text = message ? message.textContent : "";
    }
    text = text.trim();
    return (text || "The request was refused (" + request.status + ").").slice(0, 500);
  }

  // Flash messages (templates/sqladmin/flash.html): success and info fade out, problems stay.
  var Toast = window.tabler && window.tabler.bootstrap && window.tabler.bootstrap.Toast;
  if (Toast) {
    document.querySelectorAll("#flash-messages .toast").forEach(function (element) {
      var category = element.getAttribute("data-category");
      var sticky = category === "danger" || category === "warning";
      Toast.getOrCreateInstance(element, { autohide: !sticky, delay: 8000 }).show();
    });
  }

  // fetch() requests that change something.
  var originalFetch = window.fetch;
  if (originalFetch) {
    window.fetch = function (input, init) {
      init = init || {};
      var method = (init.method || "GET").toUpperCase();
      if (method !== "GET" && method !== "HEAD") {
        var headers = new Headers(init.headers || {});
        headers.set(HEADER, token);
        init.headers = headers;
      }
      return originalFetch.call(this, input, init);
    };
  }

  function addToken(form) {
    if (!form.querySelector('input[name="csrf_token"]')) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "csrf_token";
      input.value = token;
      form.appendChild(input);
    }
  }

  // Any POST form (SQLAdmin's own, or a view's) carries the token.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.method && form.method.toLowerCase() === "post") {
      addToken(form);
    }
  }, true);

  function postTo(url) {
    var form = document.createElement("form");
    form.method = "POST";
    form.action = url;
    addToken(form);
    document.body.appendChild(form);
    form.submit();
  }

  function selectedPks() {
    var pks = [];
    document.querySelectorAll("input.select-box:checked").forEach(function (box) {
      var hidden = box.parentElement.querySelector('input[type="hidden"]');
      if (hidden) { pks.push(hidden.value); }
    });
    return pks;
  }

  // Custom actions and logout are POST-only on the server; SQLAdmin links to them
  // with GET. Intercept before SQLAdmin's own handlers run (capture phase).
  document.addEventListener("click", function (event) {
    var element = event.target.closest("a, button");
    if (!element) { return; }
    var id = element.id || "";
    var href = element.getAttribute("href") || "";
    if (id.indexOf("action-custom-") === 0 && element.dataset.url) {
      event.preventDefault();
      event.stopPropagation();
      var url = element.dataset.url;
      postTo(url.indexOf("pks=") === -1 ? url + "?pks=" + selectedPks().join(",") : url);
    } else if (href.indexOf("/action/") !== -1) {
      event.preventDefault();
      event.stopPropagation();
      postTo(href);
    } else if (/\/logout\/?$/.test(href)) {
      event.preventDefault();
      event.stopPropagation();
      postTo(href);
    }
  }, true);
})();
