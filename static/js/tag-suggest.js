// Tag boxes: the browser suggests from the datalist of tags on cases the reader sees. A box that
// holds several tags separated by commas matches the whole box against the list, so after the
// first comma it would suggest nothing: each suggestion is rewritten as the tags already typed
// followed by one not yet there.
(function () {
  "use strict";
  var list = document.getElementById("known-tags");
  if (!list) { return; }
  var known = Array.prototype.map.call(list.options, function (option) { return option.value; });
  function option(value) {
    var element = document.createElement("option");
    element.value = value;
    return element;
  }
  function suggest(event) {
    var box = event.target;
    if (!box.getAttribute || box.getAttribute("list") !== "known-tags") { return; }
    var cut = box.value.lastIndexOf(",");
    var typed = cut < 0 ? [] : box.value.slice(0, cut).split(",").map(function (tag) { return tag.trim().toLowerCase(); });
    var before = cut < 0 ? "" : box.value.slice(0, cut + 1) + " ";
    var options = known.filter(function (tag) { return typed.indexOf(tag) < 0; }).map(function (tag) { return option(before + tag); });
    list.replaceChildren.apply(list, options);
  }
  document.addEventListener("input", suggest);
})();
