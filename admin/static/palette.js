// The command palette (admin/palette.py, templates/custodian/_palette.html). Ctrl+K, Cmd+K or the top
// bar's button opens it; each change of the text asks the server, which answers only the pages and
// records this user may open. Arrows move through the results, Enter opens one, Escape closes.
// Results are built with textContent, never as HTML: a record's label is data.
(function () {
  "use strict";
  var dialog = document.getElementById("palette");
  var opener = document.getElementById("palette-open");
  // Bootstrap's Modal, as SQLAdmin's tabler.min.js exports it (window.tabler), or a page's own Bootstrap.
  var Modal = (window.tabler && window.tabler.Modal) || (window.bootstrap && window.bootstrap.Modal);
  if (!dialog || !opener || !window.fetch || !Modal) {
    return; // the button stays hidden: no control is shown that would not work
  }
  var input = document.getElementById("palette-input");
  var list = document.getElementById("palette-results");
  var status = document.getElementById("palette-status");
  var DELAY_MS = 120; // one request per pause in typing, not per key
  var options = [];
  var active = -1;
  var asked = 0; // the number of the latest question: older answers are dropped
  var answered = 0; // the number of the question whose answer is shown
  var openWhenAnswered = 0;
  var timer = null;
  var returnTo = null;

  // Out of the top bar: a dialog inside a positioned bar would sit under the page-wide backdrop.
  document.body.appendChild(dialog);
  var modal = Modal.getOrCreateInstance(dialog);
  opener.hidden = false;

  function text(name) {
    return dialog.getAttribute("data-text-" + name) || "";
  }

  function open() {
    returnTo = document.activeElement;
    modal.show();
  }

  opener.addEventListener("click", open);
  document.addEventListener("keydown", function (event) {
    var isK = event.key === "k" || event.key === "K";
    if (isK && (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey) {
      event.preventDefault(); // the browser's own Ctrl+K (its search bar)
      if (dialog.classList.contains("show")) {
        input.focus();
        input.select();
      } else {
        open();
      }
    }
  });
  dialog.addEventListener("shown.bs.modal", function () {
    input.focus();
    input.select();
    ask();
  });
  dialog.addEventListener("hidden.bs.modal", function () {
    if (returnTo && typeof returnTo.focus === "function") {
      returnTo.focus();
    }
    returnTo = null;
  });

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, DELAY_MS);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      choose(active + 1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      choose(active - 1);
    } else if (event.key === "Home" && event.ctrlKey) {
      event.preventDefault();
      choose(0);
    } else if (event.key === "End" && event.ctrlKey) {
      event.preventDefault();
      choose(options.length - 1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (timer !== null) {
        window.clearTimeout(timer);
        ask();
      }
      if (answered !== asked) {
        openWhenAnswered = asked; // typed and pressed Enter at once: the result for this text, not the last
      } else if (active >= 0) {
        window.location.assign(options[active].href);
      }
    }
  });
  list.addEventListener("mousemove", function (event) {
    var option = event.target.closest ? event.target.closest("[role=option]") : null;
    if (option) {
      choose(options.indexOf(option));
    }
  });

  function ask() {
    timer = null;
    var number = ++asked;
    var url = new URL(dialog.getAttribute("data-url"), window.location.href);
    url.searchParams.set("q", input.value);
    window
      .fetch(url.href, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (type.indexOf("application/json") !== 0) {
          throw new Error("not an answer of the palette"); // signed out: the sign-in page
        }
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        if (number !== asked) {
          return;
        }
        answered = number;
        if (!answer.ok) {
          draw([], answer.body.error || text("failed"));
          return;
        }
        var items = answer.body.entries.concat(answer.body.records);
        var note = "";
        if (items.length === 0) {
          note = text("nothing");
        } else if (!answer.body.searched && input.value.trim() !== "") {
          note = text("more");
        }
        draw(items, note);
        if (openWhenAnswered === number && active >= 0) {
          window.location.assign(options[active].href);
        }
      })
      .catch(function () {
        if (number === asked) {
          answered = number;
          draw([], text("failed"));
        }
      });
  }

  function draw(items, note) {
    list.textContent = "";
    options = [];
    var group = null;
    var box = null;
    items.forEach(function (item, index) {
      if (item.group !== group || box === null) {
        group = item.group;
        box = document.createElement("div");
        box.setAttribute("role", "group");
        var heading = document.createElement("div");
        heading.className = "custodian-palette-group text-secondary";
        heading.id = "palette-group-" + index;
        heading.textContent = group;
        box.setAttribute("aria-labelledby", heading.id);
        box.appendChild(heading);
        list.appendChild(box);
      }
      box.appendChild(option(item, index));
    });
    status.textContent = note;
    input.setAttribute("aria-expanded", options.length > 0 ? "true" : "false");
    active = -1;
    choose(0);
  }

  function option(item, index) {
    var link = document.createElement("a");
    link.className = "list-group-item list-group-item-action d-flex align-items-center gap-2";
    link.id = "palette-option-" + index;
    link.href = item.url;
    link.tabIndex = -1; // the focus stays in the text box; aria-activedescendant names the option
    link.setAttribute("role", "option");
    link.setAttribute("aria-selected", "false");
    var icon = document.createElement("i");
    icon.className = (item.icon || "fa-solid fa-file") + " fa-fw text-secondary";
    icon.setAttribute("aria-hidden", "true");
    var label = document.createElement("span");
    label.className = "flex-fill text-truncate";
    label.textContent = item.label;
    link.appendChild(icon);
    link.appendChild(label);
    if (item.hint) {
      var hint = document.createElement("span");
      hint.className = "small text-secondary";
      hint.textContent = item.hint;
      link.appendChild(hint);
    }
    options.push(link);
    return link;
  }

  function choose(index) {
    if (options.length === 0) {
      active = -1;
      input.removeAttribute("aria-activedescendant");
      return;
    }
    var next = Math.max(0, Math.min(options.length - 1, index));
    if (active >= 0 && options[active]) {
      options[active].classList.remove("active");
      options[active].setAttribute("aria-selected", "false");
    }
    active = next;
    options[active].classList.add("active");
    options[active].setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", options[active].id);
    options[active].scrollIntoView({ block: "nearest" });
  }
})();
