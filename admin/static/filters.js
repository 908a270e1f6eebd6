// List filters (admin/templates/sqladmin/filters/): a relationship filter's search box, and date
// ranges sent without their empty half. No inline script: the CSP forbids it.
(function () {
  "use strict";

  // The search box is hidden until this script runs: without it the filter's first links serve.
  document.querySelectorAll("input.filter-search").forEach(function (box) {
    var results = box.nextElementSibling;
    var timer = null;
    var asked = 0;
    box.hidden = false;

    function show(items, message) {
      results.textContent = "";
      if (message) {
        var note = document.createElement("div");
        note.className = "text-muted small px-2 py-1";
        note.textContent = message;
        results.appendChild(note);
      }
      items.forEach(function (item) {
        var target = new URL(box.dataset.listUrl, window.location.href);
        target.searchParams.set(box.dataset.parameter, item.id);
        var link = document.createElement("a");
        link.className = "list-group-item list-group-item-action px-2 py-1 filter-search-result";
        link.href = target.pathname + target.search;
        link.textContent = item.text;  // text, never HTML: labels come from the database
        results.appendChild(link);
      });
    }

    function search() {
      var term = box.value.trim();
      var ticket = ++asked;
      if (!term) { show([]); return; }
      var address = new URL(box.dataset.lookupUrl, window.location.href);
      address.searchParams.set("term", term);
      fetch(address.pathname + address.search, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status === 403 ? "You may not search these records." : "The search failed."); }
          return response.json();
        })
        .then(function (body) {
          if (ticket !== asked) { return; }  // an older answer arriving after a newer one
          show(body.results, body.results.length ? "" : "Nothing found.");
        })
        .catch(function (error) {
          if (ticket === asked) { show([], error.message); }
        });
    }

    box.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(search, 250);
    });
    box.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      event.preventDefault();
      var first = results.querySelector("a.filter-search-result");
      if (first) { window.location.assign(first.href); }
    });
  });

  // A date range with one day left empty is sent without it: the URL says only what was chosen.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("date-range-filter")) { return; }
    form.querySelectorAll('input[type="date"]').forEach(function (input) {
      if (!input.value) { input.disabled = true; }
    });
  });
  // Coming back to the page from the browser's history: the form is usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll('form.date-range-filter input[type="date"]').forEach(function (input) {
      input.disabled = false;
    });
  });
})();
