// Breakdown report pages (channels, teams, labels): a bar chart of new conversations and
// resolutions per row (uPlot, vendored), from the JSON the page carries. The table under it
// has the same numbers, so nothing depends on this script.
(() => {
  "use strict";

  function draw(box) {
    const data = JSON.parse(document.getElementById(box.dataset.bars).textContent);
    if (!window.uPlot || !data.names.length) return;
    const x = data.names.map((_name, index) => index);
    const bars = uPlot.paths.bars;
    const height = 220;
    const width = () => Math.max(320, box.clientWidth - 16);
    const plot = new uPlot(
      {
        width: width(),
        height,
        scales: { x: { time: false, range: [-0.5, data.names.length - 0.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [
          {
            splits: () => x,
            values: (_u, splits) => splits.map((i) => data.names[i] ?? ""),
            grid: { show: false },
          },
          {},
        ],
        cursor: { points: { show: false } },
        series: [
          { label: data.labels.name, value: (_u, i) => (i == null ? "--" : data.names[i] ?? "--") },
          { label: data.labels.created, fill: "#1f5fd1", stroke: "#1f5fd1", width: 0, paths: bars({ size: [0.35, 48], align: -1 }), points: { show: false } },
          { label: data.labels.resolved, fill: "#12b76a", stroke: "#12b76a", width: 0, paths: bars({ size: [0.35, 48], align: 1 }), points: { show: false } },
        ],
      },
      [x, data.created, data.resolved],
      box,
    );
    new ResizeObserver(() => plot.setSize({ width: width(), height })).observe(box);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-bars]").forEach(draw);
  });
})();
