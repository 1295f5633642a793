// Decide page: the approved-scope fields only mean something for "Approve, narrowed". Editing
// one while "Approve" is chosen switches the outcome to narrowed and says so, so an edit is never
// silently dropped (the server also refuses a plain approval whose scope differs).
(function () {
  "use strict";
  var form = document.querySelector("form[data-decide]");
  if (!form) { return; }
  var notice = document.getElementById("scope-notice");
  var scopeNames = ["subjects", "categories", "window_start", "window_end", "duration_hours"];
  function outcome(value) { return form.querySelector('input[name="outcome"][value="' + value + '"]'); }
  function onScopeEdit(event) {
    if (scopeNames.indexOf(event.target.name) < 0) { return; }
    var plain = outcome("approve");
    var narrowed = outcome("approve_narrowed");
    if (plain && plain.checked && narrowed) {
      narrowed.checked = true;
      if (notice) { notice.textContent = "You changed the approved scope, so the outcome is now \u201cApprove, narrowed\u201d."; }
    }
  }
  form.addEventListener("change", onScopeEdit);
  form.addEventListener("input", onScopeEdit);
})();
