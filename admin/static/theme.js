// The admin's colour theme: the system's (light or dark) unless the person chose one with the toggle.
// Loaded in <head>, before the page is drawn, so a dark page never flashes light; an external file,
// as the Content-Security-Policy allows no inline script. The choice is kept in this browser only.
(function () {
  "use strict";
  var KEY = "custodian-theme";
  var NEXT = { auto: "light", light: "dark", dark: "auto" };
  // English unless the page gives its language's words (data-label-* on the toggle, see layout.html).
  var LABELS = { auto: "Theme: system", light: "Theme: light", dark: "Theme: dark" };
  var CHANGE = "change";
  var ICONS = { auto: "fa-circle-half-stroke", light: "fa-sun", dark: "fa-moon" };
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var unsaved = null; // the choice made on this page when the browser refuses to keep it

  function chosen() {
    var value = unsaved;
    try {
      value = window.localStorage.getItem(KEY) || unsaved;
    } catch (error) {
      // Storage refused (a private window, a policy): this page's choice, else the system's.
    }
    return Object.prototype.hasOwnProperty.call(NEXT, value) ? value : "auto";
  }

  function apply() {
    var choice = chosen();
    var dark = choice === "dark" || (choice === "auto" && system !== null && system.matches);
    var root = document.documentElement;
    root.setAttribute("data-bs-theme", dark ? "dark" : "light");
    root.setAttribute("data-custodian-theme", choice);
    var button = document.getElementById("theme-toggle");
    if (button !== null) {
      var label = button.getAttribute("data-label-" + choice) || LABELS[choice];
      var change = button.getAttribute("data-label-change") || CHANGE;
      button.setAttribute("title", label);
      button.setAttribute("aria-label", label + " (" + change + ")");
      var icon = button.querySelector("i");
      if (icon !== null) {
        icon.className = "fa-solid " + ICONS[choice];
      }
    }
  }

  apply();
  if (system !== null && system.addEventListener) {
    system.addEventListener("change", apply);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    apply();
    if (button === null) {
      return;
    }
    button.addEventListener("click", function () {
      unsaved = NEXT[chosen()];
      try {
        window.localStorage.setItem(KEY, unsaved);
      } catch (error) {
        // Not kept: this page switches all the same.
      }
      apply();
    });
  });
})();
