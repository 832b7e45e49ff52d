// Spool console: local times, and an opt-in refresh. Pages work without it.
(function () {
  "use strict";
  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }
  // <time datetime="…Z">: the text in the browser's zone; the UTC time stays in the title.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
  });
  // Refresh every 5 s while the box is ticked (remembered for this tab).
  var box = document.getElementById("autorefresh");
  if (box) {
    box.checked = sessionStorage.getItem("spool.autorefresh") === "1";
    var timer = null;
    function arm() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (box.checked) timer = setTimeout(function () { location.reload(); }, 5000);
    }
    box.addEventListener("change", function () { sessionStorage.setItem("spool.autorefresh", box.checked ? "1" : "0"); arm(); });
    arm();
  }
})();
