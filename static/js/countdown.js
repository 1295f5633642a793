// Time left until each <time data-countdown datetime="..."> (a grant's expiry). Without this
// script the page still shows the absolute time; with it, "(3 hours 12 minutes left)" follows it.
(function () {
  "use strict";
  var clocks = Array.prototype.slice.call(document.querySelectorAll("time[data-countdown]"));
  if (!clocks.length) { return; }
  function unit(count, name) { return count + " " + name + (count === 1 ? "" : "s"); }
  function words(seconds) {
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    // As people say it: "2 days 4 hours", "3 hours 12 minutes", "1 minute 5 seconds".
    if (hours >= 24) { return unit(Math.floor(hours / 24), "day") + " " + unit(hours % 24, "hour"); }
    if (hours >= 1) { return unit(hours, "hour") + " " + unit(minutes, "minute"); }
    if (minutes >= 1) { return unit(minutes, "minute") + " " + unit(seconds % 60, "second"); }
    return unit(seconds, "second");
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
