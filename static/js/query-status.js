// Follow a queued or running query: poll its JSON status and update the page in place.
(function () {
  "use strict";
  var box = document.getElementById("query-status");
  if (!box || box.dataset.done === "true") { return; }
  var url = box.dataset.statusUrl;
  function set(name, value) {
    var element = box.querySelector('[data-field="' + name + '"]');
    if (element) { element.textContent = value === null || value === "" ? "—" : String(value); }
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (status) {
        set("status", status.status_label);
        set("row_count", status.row_count);
        set("digest", status.digest);
        set("denial_reason", status.denial_reason);
        if (status.results_url) { box.querySelector('[data-field="results"]').hidden = false; }
        if (!status.done) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
