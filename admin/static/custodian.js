// Custodian: the CSRF token on SQLAdmin's jQuery requests, the delete modal, the selected rows of a
// confirmed action, flash toasts, and POST for an action SQLAdmin renders as a link.
// Forms in our templates carry the token themselves; the sign-out link opens a page with a POST form.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  var $ = window.jQuery;

  // SQLAdmin's requests go through jQuery; ajaxSetup is its public way to add a header to all of them.
  if ($) {
    $.ajaxSetup({ headers: { "X-CSRF-Token": token } });
  }

  // The delete modal (templates/sqladmin/modals/delete.html). Its URL is bound on "show", before
  // the button can be seen (a click during the fade-in must not go elsewhere), and dropped on close
  // so it can never be reused for another row. The bulk delete's selection reaches its trigger
  // only after Bootstrap opened the modal (SQLAdmin's own click handler runs second), so the
  // trigger is read again when the modal is shown and when the button is pressed.
  if ($) {
    var deleteTrigger = null;
    var bindDelete = function () {
      var trigger = $(deleteTrigger);
      var url = trigger.data("url");
      if (url) {
        $("#modal-delete-confirm").attr("data-url", url);
      }
      describeDelete(trigger.data("name"), trigger.data("pk"));
    };
    $(document).on("show.bs.modal", "#modal-delete", function (event) {
      deleteTrigger = event.relatedTarget || deleteTrigger;
      bindDelete();
      showDeleteError("");
    });
    $(document).on("shown.bs.modal", "#modal-delete", bindDelete);
    $(document).on("hidden.bs.modal", "#modal-delete", function () {
      deleteTrigger = null;
      $("#modal-delete-confirm").removeAttr("data-url").removeAttr("aria-busy");
    });
    // On success the server has flashed what happened and the list reloads; a refusal's reason
    // stays in the modal.
    $(document).on("click", "#modal-delete-confirm", function () {
      var button = this;
      bindDelete();
      var url = button.getAttribute("data-url");
      // Busy, not disabled: a disabled button drops the focus, and with it the modal's Escape key.
      if (!url || button.getAttribute("aria-busy") === "true") { return; }
      button.setAttribute("aria-busy", "true");
      showDeleteError("");
      $.ajax({ url: url, method: "DELETE", headers: { Accept: "text/plain" } })
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
    });
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

  function selectedPks() {
    var pks = [];
    document.querySelectorAll("input.select-box:checked").forEach(function (box) {
      var hidden = box.parentElement.querySelector('input[type="hidden"]');
      if (hidden) { pks.push(hidden.value); }
    });
    return pks;
  }

  function withPks(address) {
    var url = new URL(address, window.location.href);
    url.searchParams.set("pks", selectedPks().join(","));
    return url.href;
  }

  // A confirmed action on the list (templates/sqladmin/modals/list_action_confirmation.html):
  // the form is ours; the rows it applies to are the ones ticked when it is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-selected-rows")) {
      form.action = withPks(form.action);
    }
  });

  // An `@action` declared without a confirmation message has no modal of ours: SQLAdmin renders a
  // link (in the list's Actions menu, or on a details page) and follows it with GET, which the
  // POST-only route refuses. Only those links are sent as a form, before SQLAdmin's handler runs.
  // SQLAdmin's layout has no block for its Logout link either: one click signs out with a POST
  // (without this script the link opens the "Sign out?" page and its form).
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a");
    if (!link) { return; }
    var listAction = link.id.indexOf("action-custom-") === 0 && link.dataset.url;
    var href = link.getAttribute("href") || "";
    var detailsAction = !listAction && /\/action\/[^/?]+(\?|$)/.test(href);
    var logout = /\/logout\/?$/.test(href) && !link.closest("form");
    if (!listAction && !detailsAction && !logout) { return; }
    event.preventDefault();
    event.stopPropagation();
    var form = document.createElement("form");
    form.method = "POST";
    form.action = listAction ? withPks(link.dataset.url) : link.href;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrf_token";
    input.value = token;
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
  }, true);
})();
