// Time left until each <time data-countdown datetime="..."> (a grant's expiry). Without this
// script the page still shows the absolute time; with it, "(3 h 12 min left)" follows it.
(function () {
  "use strict";
  var clocks = Array.prototype.slice.call(document.querySelectorAll("time[data-countdown]"));
  if (!clocks.length) { return; }
  function words(seconds) {
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    if (hours >= 48) { return Math.floor(hours / 24) + " days " + (hours % 24) + " h"; }
    if (hours >= 1) { return hours + " h " + minutes + " min"; }
    if (minutes >= 1) { return minutes + " min " + (seconds % 60) + " s"; }
    return seconds + " s";
  }
  function tick() {
    var now = Date.now();
    clocks.forEach(function (clock) {
      var left = Math.floor((Date.parse(clock.getAttribute("datetime")) - now) / 1000);
      var label = clock.parentNode.querySelector("[data-countdown-left]");
      if (!label) { return; }
      label.textContent = left > 0 ? "(" + words(left) + " left)" : "(expired: reload the page)";
    });
  }
  tick();
  window.setInterval(tick, 1000);
})();
