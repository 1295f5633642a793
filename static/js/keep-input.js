// After a session ended mid-form and the user logged in again: put back what they had typed
// into the form that posts to the same address (data from the server, in #kept-input).
(function () {
  "use strict";
  var data = document.getElementById("kept-input");
  if (!data) { return; }
  var kept = JSON.parse(data.textContent);
  var form = Array.prototype.find.call(document.forms, function (candidate) {
    return new URL(candidate.action, window.location.href).pathname === kept.action;
  });
  if (!form) { return; }
  Object.keys(kept.fields).forEach(function (name) {
    var values = kept.fields[name];
    Array.prototype.forEach.call(form.elements.namedItem(name) ? form.querySelectorAll('[name="' + name + '"]') : [], function (input) {
      if (input.type === "checkbox" || input.type === "radio") {
        input.checked = values.indexOf(input.value) >= 0;
      } else if (input.tagName === "SELECT") {
        Array.prototype.forEach.call(input.options, function (option) { option.selected = values.indexOf(option.value) >= 0; });
      } else if (input.type !== "hidden" && input.type !== "file") {
        input.value = values[0] || "";
      }
    });
  });
  var first = form.querySelector("textarea, input:not([type=hidden])");
  if (first) { first.focus(); }
})();
