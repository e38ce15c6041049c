// flow serve: follows a running run. Each journal event announced by the server
// (server-sent events) re-fetches the live part of the page; running steps tick their
// elapsed time, as the terminal's spinner does.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var base = live.getAttribute("data-run");
  // The browser's clock may differ from the server's: measure from the server's now.
  var skew = Date.now() - Date.parse(live.getAttribute("data-now"));
  function took(ms) {
    if (ms < 1000) return Math.max(0, Math.round(ms)) + "ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
    var s = Math.floor(ms / 1000);
    return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  }
  function tick() {
    var now = Date.now() - skew;
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(since)) el.textContent = took(now - since);
    });
  }
  setInterval(tick, 200);
  tick();
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(base + "?part=live", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) { live.innerHTML = html; tick(); }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  if (live.getAttribute("data-live") !== "true" || !window.EventSource) return;
  var note = document.getElementById("live-note");
  var source = new EventSource(base + "/events");
  source.onopen = function () { if (note) { note.className = "live-note on"; note.textContent = "live"; } };
  source.onmessage = refresh;
  source.addEventListener("sync", refresh);
  source.addEventListener("end", function () {
    source.close();
    refresh();
    if (note) { note.className = "live-note"; note.textContent = "finished"; }
  });
})();
