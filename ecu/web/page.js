// The page's only script: the filter, "only problems", and polling the
// live part (/?live=1) to swap it in. No framework, no other host.
(function () {
  "use strict";
  var filter = document.getElementById("filter");
  var problems = document.getElementById("problems");
  var poll = document.getElementById("poll");
  var q = new URLSearchParams(location.search);
  if (q.get("q")) filter.value = q.get("q");
  if (q.get("problems")) problems.checked = true;

  function apply() {
    var f = filter.value.trim().toLowerCase();
    var only = problems.checked;
    document.querySelectorAll("tbody.vserver").forEach(function (tb) {
      var show = (!f || tb.dataset.search.indexOf(f) >= 0) && (!only || tb.dataset.sev !== "ok");
      tb.classList.toggle("hidden", !show);
      if (show && only) {
        tb.querySelectorAll("tr.srow, tr.drow").forEach(function (tr) {
          tr.classList.toggle("hidden", tr.dataset.sev === "ok");
        });
      } else {
        tb.querySelectorAll("tr.hidden").forEach(function (tr) { tr.classList.remove("hidden"); });
      }
    });
    document.querySelectorAll("#checks tbody tr[data-search], #backends tbody tr[data-search]").forEach(function (tr) {
      var show = (!f || tr.dataset.search.indexOf(f) >= 0) && (!only || tr.dataset.sev !== "ok");
      tr.classList.toggle("hidden", !show);
    });
  }
  filter.addEventListener("input", apply);
  problems.addEventListener("change", apply);
  apply();

  // Poll: one request at a time; a slow answer slows the polling down,
  // so a big page on a busy node costs little.
  var live = document.getElementById("live");
  var failures = 0;
  function next(ms) { setTimeout(tick, ms); }
  function tick() {
    var started = Date.now();
    var url = "/?live=1" + (q.get("vserver") ? "&vserver=" + encodeURIComponent(q.get("vserver")) : "");
    fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      live.innerHTML = html;
      apply();
      failures = 0;
      poll.textContent = "updated " + new Date().toLocaleTimeString();
      poll.className = "muted";
      var d = document.getElementById("data");
      var every = d ? parseInt(d.dataset.refresh, 10) || 2000 : 2000;
      next(Math.max(every, 5 * (Date.now() - started)));
    }).catch(function (e) {
      failures++;
      poll.textContent = "ECU not answering (" + e.message + "); retrying";
      poll.className = "down-t";
      next(Math.min(30000, 2000 * failures));
    });
  }
  next(2000);
})();
