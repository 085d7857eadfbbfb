// minis3 console: confirmations, a live status panel, and the live request feed (SSE).
document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-confirm]");
  if (b && !window.confirm(b.dataset.confirm)) e.preventDefault();
});
const status = document.querySelector("[data-refresh]");
if (status) {
  setInterval(async () => {
    try {
      const r = await fetch(status.dataset.refresh, {credentials: "same-origin"});
      if (r.ok) status.innerHTML = await r.text();
    } catch (err) { /* the console may be restarting */ }
  }, 2000);
}
const feed = document.querySelector("[data-events]");
if (feed) {
  const es = new EventSource(feed.dataset.events);
  es.addEventListener("request", (e) => {
    const r = JSON.parse(e.data);
    const tr = document.createElement("tr");
    const cells = [r.request_id, r.name, `${r.status ?? ""} ${r.code ?? ""}`, r.ms];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      if (i === 0) { const a = document.createElement("a"); a.href = "/trace/" + r.request_id; a.textContent = v; td.append(a); }
      else td.textContent = v;
      tr.append(td);
    });
    feed.querySelector("tr").after(tr);
  });
}
