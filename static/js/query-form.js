// Query form: check the window before sending. A window outside the grant is refused by the
// server and recorded as a denied query (which counts toward the repeated-denial alert), so a
// typing slip is caught here first. The server still decides; this only saves a recorded denial.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-window-check]");
  function say(input, message) {
    var id = input.id + "_client_error";
    var box = document.getElementById(id);
    if (!message) { if (box) { box.remove(); } input.removeAttribute("aria-invalid"); return; }
    if (!box) {
      box = document.createElement("span");
      box.className = "field-error";
      box.id = id;
      input.insertAdjacentElement("afterend", box);
    }
    box.textContent = message;
    input.setAttribute("aria-invalid", "true");
  }
  function problem(input) {
    if (!input.value) { return ""; }
    if (input.min && input.value < input.min) { return "The grant's window starts on " + input.min + "."; }
    if (input.max && input.value > input.max) { return "The grant's window ends on " + input.max + "."; }
    return "";
  }
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      var start = form.querySelector('input[name="window_start"]');
      var end = form.querySelector('input[name="window_end"]');
      if (!start || !end) { return; }
      var startProblem = problem(start);
      var endProblem = problem(end);
      if (!endProblem && start.value && end.value && start.value > end.value) {
        endProblem = "Must not be before the start (" + start.value + ").";
      }
      say(start, startProblem);
      say(end, endProblem);
      if (startProblem || endProblem) {
        event.preventDefault();
        (startProblem ? start : end).focus();
      }
    });
  });
})();
