// Follow a queued or running query: poll its JSON status and update the page in place.
// Stops for good, with a visible message, when the session has ended (the server answers 401
// or a login page instead of the status).
(function () {
  "use strict";
  var box = document.getElementById("query-status");
  if (!box || box.dataset.done === "true") { return; }
  var url = box.dataset.statusUrl;
  var SIGNED_OUT = "signed-out";
  function set(name, value) {
    var element = box.querySelector('[data-field="' + name + '"]');
    if (element) { element.textContent = value === null || value === "" ? "—" : String(value); }
  }
  function signedOut() {
    var notice = document.getElementById("query-signed-out");
    notice.hidden = false;
    notice.querySelector("a").href = notice.dataset.loginUrl + "?next=" + encodeURIComponent(window.location.pathname);
  }
  function finished(status) {
    // The "queued" flash message no longer says what is true.
    Array.prototype.forEach.call(document.querySelectorAll(".message.query-queued"), function (message) {
      message.remove();
    });
    if (status.empty_reason) {
      box.querySelector('[data-field="empty_reason_text"]').textContent = status.empty_reason;
      box.querySelector('[data-field="empty_reason"]').hidden = false;
    }
  }
  function read(response) {
    var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
    if (response.status === 401 || response.redirected || !json) { return Promise.reject(SIGNED_OUT); }
    return response.ok ? response.json() : Promise.reject(response.status);
  }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(read)
      .then(function (status) {
        set("status", status.status_label);
        set("row_count", status.row_count);
        set("digest", status.digest);
        set("denial_reason", status.denial_reason);
        if (status.results_url) { box.querySelector('[data-field="results"]').hidden = false; }
        if (status.done) { finished(status); } else { window.setTimeout(poll, 2000); }
      })
      .catch(function (problem) {
        if (problem === SIGNED_OUT) { signedOut(); } else { window.setTimeout(poll, 5000); }
      });
  }
  window.setTimeout(poll, 1000);
})();
