// Progressive enhancement for the status page: the page is complete without this script.
// With it: the data refreshes in place every `data-refresh` seconds (no reload), and uptime bars
// show their figures in a tooltip on hover or touch.
(function () {
  "use strict";
  var body = document.body;
  // 0: refreshing is off (no timer); anything unreadable: the default.
  var every = parseFloat(body.getAttribute("data-refresh"));
  if (isNaN(every) || every < 0) { every = 15; }
  var timer = null;
  var busy = false;

  function setLive(text, stale) {
    var live = document.getElementById("live");
    if (live) { live.textContent = text; live.className = stale ? "stale" : ""; }
  }

  // Times are sent absolute (a page is rendered once per snapshot, for every reader); shown here
  // as ages against the time the page was generated.
  function ages() {
    var gen = document.querySelector("header time[data-at]");
    var ref = gen ? parseFloat(gen.getAttribute("data-at")) : Date.now() / 1000;
    var times = document.querySelectorAll("main time[data-at]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      var s = Math.max(0, ref - parseFloat(t.getAttribute("data-at")));
      if (!t.title) { t.title = t.textContent; }
      t.textContent = s < 90 ? Math.round(s) + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago"
        : s < 172800 ? Math.round(s / 3600) + " h ago" : Math.round(s / 86400) + " d ago";
    }
  }

  function refresh() {
    if (busy) { return Promise.resolve(false); }
    busy = true;
    return fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("content");
        var current = document.getElementById("content");
        if (fresh && current) {
          current.replaceWith(document.importNode(fresh, true));
          document.title = doc.title;
          ages();
        }
        body.setAttribute("data-refreshes", String(parseInt(body.getAttribute("data-refreshes"), 10) + 1));
        setLive(liveText(), false);
        return true;
      })
      .catch(function (err) {
        setLive("could not refresh (" + err.message + "): showing older data", true);
        return false;
      })
      .then(function (ok) { busy = false; return ok; });
  }

  function liveText() { return every > 0 ? "live, every " + every + " s" : "not refreshing"; }

  function schedule() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
    if (every > 0) { timer = window.setInterval(refresh, every * 1000); }
  }

  var tip = document.createElement("div");
  tip.id = "tip";
  tip.hidden = true;
  tip.setAttribute("role", "tooltip");
  body.appendChild(tip);

  function show(event) {
    var target = event.target;
    if (!target || !target.closest) { return; }
    var el = target.closest("svg.bars rect, svg.chart circle");
    if (!el) { tip.hidden = true; return; }
    var title = el.querySelector("title");
    if (!title) { return; }
    tip.textContent = title.textContent;
    tip.hidden = false;
    var x = event.clientX, y = event.clientY;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(x - w / 2, window.innerWidth - w - 4)) + "px";
    tip.style.top = (y - h - 12 < 4 ? y + 16 : y - h - 12) + "px";
  }
  document.addEventListener("mouseover", show);
  document.addEventListener("mousemove", show);
  document.addEventListener("touchstart", function (e) { if (e.touches[0]) { show({ target: e.target, clientX: e.touches[0].clientX, clientY: e.touches[0].clientY }); } }, { passive: true });
  document.addEventListener("mouseleave", function () { tip.hidden = true; });

  window.statusPage = { refresh: refresh, every: every };
  ages();
  setLive(liveText(), false);
  schedule();
})();
