// minis3 console: the live charts (uPlot, static/vendor/), fed by Server-Sent Events.
// The server sends the points it kept ("history"), then one a second ("point"): see
// minis3/console/series.py for what each value is. Each chart's figure carries, for tests
// and for anyone curious, how many points it holds (data-points), the last one's time
// (data-t) and values (data-last).
(() => {
  const root = document.querySelector("[data-live]");
  if (!root || typeof uPlot === "undefined") return;
  const methods = JSON.parse(root.dataset.methods), azs = JSON.parse(root.dataset.azs);
  const MAX_POINTS = 300;
  const COLORS = ["#4a7bd0", "#e0832b", "#3a9d5d", "#b04ab0", "#c9a227", "#d9534f", "#5bc0de"];
  const MiB = 1048576;
  const DASH = [6, 4];
  const rate2 = (v) => v == null ? null : Math.round(v * 100) / 100;

  const defs = {
    rate: methods.map((m, i) => ({label: m, color: COLORS[i], value: (p) => p.rate[m], unit: "/s"})),
    latency: methods.flatMap((m, i) => [
      {label: m + " p50", color: COLORS[i], value: (p) => p.p50[m], unit: " ms"},
      {label: m + " p99", color: COLORS[i], dash: DASH, value: (p) => p.p99[m], unit: " ms"}]),
    bytes: azs.flatMap((az, i) => [
      {label: az + " in", color: COLORS[i], value: (p) => rate2(p.in[az] / MiB), unit: " MiB/s"},
      {label: az + " out", color: COLORS[i], dash: DASH, value: (p) => rate2(p.out[az] / MiB), unit: " MiB/s"}]),
    redundancy: [
      {label: "fragments on down nodes", key: "on_down_nodes", color: COLORS[5], value: (p) => p.on_down_nodes},
      {label: "fragments handed off, not yet home", key: "handed_off", color: COLORS[1], value: (p) => p.handed_off},
      {label: "objects not full (scrubber's last pass)", key: "not_full_objects", color: COLORS[3],
       value: (p) => p.not_full_objects}],
    repair: [
      {label: "rebuilt", key: "rebuilt", color: COLORS[2], value: (p) => p.rebuilt, unit: "/s"},
      {label: "moved home", key: "moved_home", color: COLORS[0], value: (p) => p.moved_home, unit: "/s"}],
  };

  const charts = {};
  for (const fig of root.querySelectorAll("[data-chart]")) {
    const name = fig.dataset.chart, series = defs[name];
    const data = [[], ...series.map(() => [])];
    const plotEl = fig.querySelector(".plot");
    const opts = {
      width: Math.max(300, plotEl.clientWidth || 600), height: 200,
      scales: {x: {time: true}, y: {range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)]}},
      series: [{}, ...series.map((s) => ({label: s.label, stroke: s.color, width: 2, dash: s.dash,
                                          spanGaps: false, points: {show: false}}))],
      axes: [{}, {size: 60}],
      legend: {live: false},
    };
    charts[name] = {fig, series, data, plot: new uPlot(opts, data, plotEl), lastT: null};
  }

  function add(chart, p) {
    const {data, series} = chart;
    if (chart.lastT !== null && p.t <= chart.lastT) return;
    if (chart.lastT !== null && p.t - chart.lastT > 3) {     // the sampler had stopped: break the lines
      data[0].push(chart.lastT + 1);
      series.forEach((s, i) => data[i + 1].push(null));
    }
    data[0].push(p.t);
    series.forEach((s, i) => data[i + 1].push(s.value(p) ?? null));
    while (data[0].length > MAX_POINTS) data.forEach((col) => col.shift());
    chart.lastT = p.t;
  }

  function show(chart, p) {
    chart.plot.setData(chart.data);
    const last = {};
    chart.series.forEach((s, i) => { last[s.key || s.label] = chart.data[i + 1][chart.data[i + 1].length - 1]; });
    chart.fig.dataset.points = String(chart.data[0].length);
    chart.fig.dataset.t = String(p.t);
    chart.fig.dataset.last = JSON.stringify(last);
    chart.fig.querySelector(".now").textContent = "now: " + chart.series
      .map((s) => `${s.label} ${last[s.key || s.label] ?? "–"}${last[s.key || s.label] == null ? "" : (s.unit || "")}`)
      .join(" · ");
  }

  function showPass(p) {
    const el = root.querySelector("[data-testid=scrub-pass]");
    if (!el) return;
    const r = p.pass;
    el.textContent = r ? `Scrubber: pass ${r.id} running (${r.phase}), ${r.done} of about ${r.total} keys walked`
                       : "Scrubber: between passes.";
  }

  function take(points) {
    if (!points.length) return;
    for (const chart of Object.values(charts)) {
      points.forEach((p) => add(chart, p));
      show(chart, points[points.length - 1]);
    }
    showPass(points[points.length - 1]);
  }

  const es = new EventSource(root.dataset.live);
  es.addEventListener("history", (e) => {          // also after a reconnection: start again from it
    for (const c of Object.values(charts)) { c.data.forEach((col) => { col.length = 0; }); c.lastT = null; }
    take(JSON.parse(e.data));
  });
  es.addEventListener("point", (e) => take([JSON.parse(e.data)]));
  window.addEventListener("resize", () => {
    for (const c of Object.values(charts)) {
      c.plot.setSize({width: Math.max(300, c.fig.querySelector(".plot").clientWidth), height: 200});
    }
  });
})();
