// Inline rows (admin/inlines.py, templates/custodian/_inlines.html): "Add a line" copies the row
// prototype with the next row number, and each row's lookups become ajax selects served by the
// child view's lookup route (the same one its own form uses, with its permission checks).
(function () {
  "use strict";
  var $ = window.jQuery;
  var PROTOTYPE_ROW = "__row__";

  function lookup(select) {
    if (!$ || !$.fn.select2 || select.disabled) {
      return;
    }
    var $select = $(select);
    $select.select2({
      minimumInputLength: 1,
      allowClear: true,
      width: "100%",
      placeholder: select.getAttribute("data-placeholder") || "",
      ajax: {
        url: select.getAttribute("data-lookup-url"),
        dataType: "json",
        data: function (params) {
          return { name: select.getAttribute("data-lookup-name"), term: params.term };
        },
      },
    });
  }

  function renumber(row, number) {
    row.setAttribute("data-row", String(number));
    row.querySelectorAll("[name], [id]").forEach(function (element) {
      ["name", "id"].forEach(function (attribute) {
        var value = element.getAttribute(attribute);
        if (value) {
          element.setAttribute(attribute, value.replace(PROTOTYPE_ROW, String(number)));
        }
      });
      element.disabled = false;
    });
  }

  function addRow(section) {
    var prototype = section.querySelector("template[data-inline-prototype]");
    var row = prototype && prototype.content.querySelector("tr");
    if (!row) {
      return;
    }
    var number = parseInt(section.getAttribute("data-next-row"), 10) || 0;
    var copy = row.cloneNode(true);
    renumber(copy, number);
    var body = section.querySelector("tbody");
    var empty = body.querySelector(".custodian-inline-empty");
    if (empty) {
      empty.remove();
    }
    body.appendChild(copy);
    section.setAttribute("data-next-row", String(number + 1));
    copy.querySelectorAll('[data-role="inline-lookup"]').forEach(lookup);
  }

  document.querySelectorAll("fieldset[data-inline]").forEach(function (section) {
    section.querySelectorAll('tbody [data-role="inline-lookup"]').forEach(lookup);
    var button = section.querySelector("[data-inline-add]");
    if (button) {
      button.addEventListener("click", function () {
        addRow(section);
      });
    }
  });
})();
