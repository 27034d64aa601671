// Report pages: draws the trend chart (uPlot, vendored) from the JSON the page carries. The
// same numbers are in a table below it, so nothing depends on this script.
(() => {
  "use strict";

  function draw(box) {
    const data = JSON.parse(document.getElementById(box.dataset.chart).textContent);
    if (!window.uPlot || !data.days.length) return;
    const x = data.days.map((day) => Date.parse(day + "T12:00:00Z") / 1000);
    const width = () => Math.max(320, box.clientWidth - 16);
    const plot = new uPlot(
      {
        width: width(),
        height: 260,
        scales: { x: { time: true }, minutes: { auto: true } },
        axes: [{}, { label: "" }, { side: 1, scale: "minutes", grid: { show: false } }],
        series: [
          {},
          { label: data.labels.created, stroke: "#1f5fd1", width: 2 },
          { label: data.labels.resolved, stroke: "#067647", width: 2 },
          { label: data.labels.first_response_minutes, stroke: "#b54708", width: 1, dash: [4, 4], scale: "minutes" },
        ],
      },
      [x, data.created, data.resolved, data.first_response_minutes],
      box,
    );
    new ResizeObserver(() => plot.setSize({ width: width(), height: 260 })).observe(box);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
