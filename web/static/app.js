// apikeyd dashboard: the little the pages do in the browser. Everything
// works without it; it only adds the copy button of a key shown once.
"use strict";
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var status = document.getElementById(button.getAttribute("aria-describedby"));
  var done = function (msg) { if (status) status.textContent = msg; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.value || source.textContent).then(
      function () { done("Copied."); },
      function () { done("Copying failed: select the key and copy it by hand."); });
  } else {
    source.select && source.select();
    done(document.execCommand && document.execCommand("copy") ? "Copied." : "Select the key and copy it by hand.");
  }
});
