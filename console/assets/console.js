// The console's own script (no inline scripts anywhere: the CSP forbids them).
// "Copy" buttons next to a secret shown once copy its value to the clipboard.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) return;
  field.select();
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = "Copied";
    });
  }
});

// Usage charts: a <div class="chart" data-chart='{"x":[…],"series":[{"label":…,"values":[…]}]}'>
// becomes a uPlot chart (drawn again after htmx swaps a page in).
function drawCharts(root) {
  if (typeof uPlot === "undefined") return;
  root.querySelectorAll("[data-chart]").forEach(function (el) {
    if (el.getAttribute("data-drawn")) return;
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var colors = ["#2563eb", "#16a34a", "#d97706"];
    var opts = {
      width: Math.max(280, Math.min(el.clientWidth || 800, 1100)),
      height: 260,
      series: [{}].concat(spec.series.map(function (s, i) {
        return { label: s.label, stroke: colors[i % colors.length], width: 2 };
      })),
      axes: [{}, {}],
    };
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    el.setAttribute("data-drawn", "1");
    new uPlot(opts, data, el);
  });
}
document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
document.addEventListener("htmx:load", function (e) { drawCharts(e.target); });
