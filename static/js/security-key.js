// Security keys and passkeys (WebAuthn), next to allauth's own scripts (mfa/js/webauthn.js).
// 1. "Use a security key" on a protected form (accounts/_step_up.html): ask Custos for a
//    challenge, let the browser's key sign it, and send the same form with the answer, so what
//    was typed into the form is sent with it.
// 2. When the browser gives up (no key, cancelled, timed out), say so next to the button
//    instead of failing silently (allauth reports it as an "allauth.error" event).
(function () {
  "use strict";
  var NOT_USED = "The security key was not used (cancelled, timed out, or not a key of this account). Try again, or use a code.";

  function say(element, text) {
    var form = element && element.closest("form");
    var status = form ? form.querySelector("[data-key-status]") : document.querySelector("[data-key-status]");
    if (status) { status.textContent = text; }
    return Boolean(status);
  }

  async function stepUp(button) {
    var form = button.closest("form");
    say(button, "Touch or unlock your security key when the browser asks.");
    try {
      var response = await fetch(button.dataset.stepUpKey, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) { throw new Error("No challenge from the server: " + response.status); }
      var options = (await response.json()).request_options;
      var credential = await window.webauthnJSON.get(options);
      form.querySelector("input[name=step_up_credential]").value = JSON.stringify(credential);
      form.submit();
    } catch (error) {
      say(button, NOT_USED);
      console.error(error);
    }
  }

  document.querySelectorAll("[data-step-up-key]").forEach(function (button) {
    button.addEventListener("click", function () { stepUp(button); });
  });

  document.addEventListener("allauth.error", function (event) {
    if (say(document.activeElement, NOT_USED)) { event.preventDefault(); }
  });
})();
