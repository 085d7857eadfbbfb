// minis3 console: the live charts (uPlot, static/vendor/), fed by Server-Sent Events.
// The server sends the points it kept ("history"), then one a second ("point"): see
// minis3/console/series.py for what each value is. Each chart's figure carries, for tests
// and for anyone curious, how many points it holds (data-points), the last one's time
// (data-t) and values (data-last, keyed by line label).
//
// The request charts' lines are S3 operations, which appear as they are used: the last point
// names them (p.ops: the busiest over the history, see series.chart_operations), and when
// that list changes the chart is drawn anew with its new lines, from the points kept.
(() => {
  const root = document.querySelector("[data-live]");
  if (!root || typeof uPlot === "undefined") return;
  const common = JSON.parse(root.dataset.operations), azs = JSON.parse(root.dataset.azs);
  const MAX_POINTS = 300;
  const COLORS = ["#4a7bd0", "#e0832b", "#3a9d5d", "#b04ab0", "#c9a227", "#d9534f", "#5bc0de", "#8c6d46"];
  const SPARE = ["#2f4f4f", "#e377c2", "#17becf", "#bcbd22"];      // operations beyond the common ones
  const GREY = "#999";
  const MiB = 1048576;
  const DASH = [6, 4];
  const rate2 = (v) => v == null ? null : Math.round(v * 100) / 100;
  const NO_OPERATION = "-", OTHER = "other";

  // An operation keeps its colour whatever else is drawn: the common ones by their place in the
  // list, any other by its name.
  function colorOf(op) {
    const i = common.indexOf(op);
    if (i >= 0) return COLORS[i % COLORS.length];
    if (op === NO_OPERATION || op === OTHER) return GREY;
    let h = 0;
    for (const c of op) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return SPARE[h % SPARE.length];
  }
  const nameOf = (op) => op === NO_OPERATION ? "(refused)" : op;

  const NO_OPS = {rate: [], latency: []};
  const defs = {
    rate: (ops) => ops.rate.map((op) => op === OTHER
      ? {label: OTHER, color: GREY, dash: [2, 3], unit: "/s",
         value: (p) => rate2(Object.entries(p.rate).reduce((sum, [o, r]) => sum + (ops.rate.includes(o) ? 0 : r), 0))}
      : {label: nameOf(op), color: colorOf(op), dash: op === NO_OPERATION ? [2, 3] : undefined, unit: "/s",
         value: (p) => p.rate[op] ?? 0}),
    latency: (ops) => ops.latency.flatMap((op) => [
      {label: nameOf(op) + " p50", color: colorOf(op), value: (p) => p.p50[op], unit: " ms"},
      {label: nameOf(op) + " p99", color: colorOf(op), dash: DASH, value: (p) => p.p99[op], unit: " ms"}]),
    bytes: () => azs.flatMap((az, i) => [
      {label: az + " in", color: COLORS[i], value: (p) => rate2(p.in[az] / MiB), unit: " MiB/s"},
      {label: az + " out", color: COLORS[i], dash: DASH, value: (p) => rate2(p.out[az] / MiB), unit: " MiB/s"}]),
    redundancy: () => [
      {label: "fragments on down nodes", key: "on_down_nodes", color: COLORS[5], value: (p) => p.on_down_nodes},
      {label: "fragments handed off, not yet home", key: "handed_off", color: COLORS[1], value: (p) => p.handed_off},
      {label: "objects not full (scrubber's last pass)", key: "not_full_objects", color: COLORS[3],
       value: (p) => p.not_full_objects}],
    repair: () => [
      {label: "rebuilt", key: "rebuilt", color: COLORS[2], value: (p) => p.rebuilt, unit: "/s"},
      {label: "moved home", key: "moved_home", color: COLORS[0], value: (p) => p.moved_home, unit: "/s"}],
  };

  // The points kept (MAX_POINTS at most), with a {t, gap: true} where the sampler had stopped.
  const points = [];
  let lastT = null;

  const charts = {};
  for (const fig of root.querySelectorAll("[data-chart]")) {
    charts[fig.dataset.chart] = {fig, name: fig.dataset.chart, series: null, shape: null, plot: null};
  }

  function columns(series) {
    return [points.map((p) => p.t), ...series.map((s) => points.map((p) => p.gap ? null : s.value(p) ?? null))];
  }

  // (Re)draw a chart with these lines: at first, and when the operations to draw change.
  function build(chart, series) {
    const plotEl = chart.fig.querySelector(".plot");
    if (chart.plot) chart.plot.destroy();
    const opts = {
      width: Math.max(300, plotEl.clientWidth || 600), height: 200,
      scales: {x: {time: true}, y: {range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)]}},
      series: [{}, ...series.map((s) => ({label: s.label, stroke: s.color, width: 2, dash: s.dash,
                                          spanGaps: false, points: {show: false}}))],
      axes: [{}, {size: 60}],
      legend: {live: false},
    };
    chart.series = series;
    chart.shape = series.map((s) => s.label).join("\n");
    chart.plot = new uPlot(opts, columns(series), plotEl);
  }

  function add(p) {
    if (lastT !== null && p.t <= lastT) return;
    if (lastT !== null && p.t - lastT > 3) points.push({t: lastT + 1, gap: true});   // break the lines
    points.push(p);
    while (points.length > MAX_POINTS) points.shift();
    lastT = p.t;
  }

  function show(chart, p) {
    const series = defs[chart.name](p.ops || NO_OPS);
    const data = columns(series);
    if (series.map((s) => s.label).join("\n") !== chart.shape) build(chart, series);
    else chart.plot.setData(data);
    const last = {};
    series.forEach((s, i) => { last[s.key || s.label] = data[i + 1][data[i + 1].length - 1]; });
    chart.fig.dataset.points = String(data[0].length);
    chart.fig.dataset.t = String(p.t);
    chart.fig.dataset.last = JSON.stringify(last);
    chart.fig.querySelector(".now").textContent = "now: " + (series
      .map((s) => `${s.label} ${last[s.key || s.label] ?? "–"}${last[s.key || s.label] == null ? "" : (s.unit || "")}`)
      .join(" · ") || "no requests yet");
  }

  function showPass(p) {
    const el = root.querySelector("[data-testid=scrub-pass]");
    if (!el) return;
    const r = p.pass;
    el.textContent = r ? `Scrubber: pass ${r.id} running (${r.phase}), ${r.done} of about ${r.total} keys walked`
                       : "Scrubber: between passes.";
  }

  function take(ps) {
    if (!ps.length) return;
    ps.forEach(add);
    const p = ps[ps.length - 1];
    for (const chart of Object.values(charts)) show(chart, p);
    showPass(p);
  }

  for (const chart of Object.values(charts)) build(chart, defs[chart.name](NO_OPS));
  const es = new EventSource(root.dataset.live);
  es.addEventListener("history", (e) => {          // also after a reconnection: start again from it
    points.length = 0;
    lastT = null;
    take(JSON.parse(e.data));
  });
  es.addEventListener("point", (e) => take([JSON.parse(e.data)]));
  window.addEventListener("resize", () => {
    for (const c of Object.values(charts)) {
      c.plot.setSize({width: Math.max(300, c.fig.querySelector(".plot").clientWidth), height: 200});
    }
  });
})();
