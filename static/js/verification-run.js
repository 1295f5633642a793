// Follow a "Verify now" run: poll its JSON status, move the progress bar, and reload the page
// once it has finished so that the recorded outcome shows. Stops with a message if signed out.
(function () {
  "use strict";
  var box = document.getElementById("verification-run");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  function set(name, value) {
    var element = box.querySelector('[data-field="' + name + '"]');
    if (element) { element.textContent = String(value); }
  }
  function say(text) {
    var outcome = box.querySelector('[data-field="outcome"]');
    outcome.textContent = text;
    outcome.hidden = false;
  }
  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.status === 401 || response.redirected || !json) { return Promise.reject("signed-out"); }
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(function (run) {
        set("status", run.status_label);
        set("checked", run.checked);
        set("total", run.total);
        bar.value = run.percent;
        bar.textContent = run.percent + "%";
        if (run.done) {
          say((run.ok ? "Chain OK: " : "FAILED: ") + run.summary);
          window.setTimeout(function () { window.location.reload(); }, 1500);
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function (problem) {
        if (problem === "signed-out") { say("You are signed out; log in again to see the outcome."); }
        else { window.setTimeout(poll, 3000); }
      });
  }
  window.setTimeout(poll, 500);
})();
