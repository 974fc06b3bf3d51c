// scanwatch dashboard: copy buttons and confirmations; the pages work without it.
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest ? ev.target.closest("button.copy") : null;
  if (!b) { return; }
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) { return; }
  navigator.clipboard.writeText(el.textContent).then(function () {
    var old = b.textContent;
    b.textContent = "copied";
    setTimeout(function () { b.textContent = old; }, 1500);
  });
});
document.addEventListener("submit", function (ev) {
  var b = ev.target.querySelector("button[data-confirm]");
  if (b && !window.confirm(b.getAttribute("data-confirm"))) { ev.preventDefault(); }
});
