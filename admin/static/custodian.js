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
      var url = window.jQuery(event.relatedTarget).data("url");
      if (url) {
        window.jQuery("#modal-delete-button").attr("data-url", url);
      }
    });
    window.jQuery(document).on("hidden.bs.modal", "#modal-delete", function () {
      window.jQuery("#modal-delete-button").removeAttr("data-url");
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
