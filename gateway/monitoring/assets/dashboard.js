// RDG dashboard: draws /dashboard/data.json with Chart.js (served by the gateway) and refreshes
// every 30 s. After each draw every canvas carries data-points (points drawn) and the body
// data-state="ready", for people and for the browser test alike.
"use strict";

const REFRESH_MS = 30000;
const COLORS = ["#16406b", "#d9822b", "#2e8540", "#8e3ca8", "#b3261e", "#00838f", "#6d4c41",
                "#5c6bc0"];
const STAGES = { claim: "received→claimed", final: "received→final", ack: "final→acknowledged",
                 critical_ack: "critical ack" };
const charts = {};

function minutes(seconds) { return seconds === null ? null : Math.round(seconds / 6) / 10; }

function human(seconds) {
  if (seconds < 3600) return Math.round(seconds / 60) + " min";
  return Math.floor(seconds / 3600) + " h " + Math.round(seconds % 3600 / 60) + " min";
}

function draw(id, config) {
  const canvas = document.getElementById(id);
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false },
                                 config.options || {});
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(canvas, config);
  let points = 0;
  for (const ds of config.data.datasets) points += ds.data.filter(v => v !== null).length;
  canvas.dataset.points = points;
}

function render(data) {
  document.getElementById("updated").textContent =
      "as of " + data.generated_at.substring(0, 19).replace("T", " ") + " " + data.time_zone;
  document.getElementById("due-header").textContent = "Due (" + data.time_zone + ")";
  const depth = data.queues.reduce((n, q) => n + q.depth, 0);
  const overdue = data.queues.reduce((n, q) => n + q.overdue, 0);
  document.getElementById("tile-completed").textContent = data.totals.completed_stages;
  document.getElementById("tile-depth").textContent = depth;
  document.getElementById("tile-overdue").textContent = overdue;
  document.getElementById("tile-breaches").textContent = data.totals.open_breaches;

  const hours = data.tat.hours.map(h => h.substring(11, 16));
  const tat = [];
  data.tat.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    tat.push({ label: s.county + " p50", data: s.p50.map(minutes), borderColor: color,
               backgroundColor: color, spanGaps: true });
    tat.push({ label: s.county + " p90", data: s.p90.map(minutes), borderColor: color,
               backgroundColor: color, borderDash: [6, 4], spanGaps: true });
  });
  draw("tat-chart", { type: "line", data: { labels: hours, datasets: tat },
                      options: { scales: { y: { beginAtZero: true,
                                                title: { display: true, text: "minutes" } } } } });

  draw("queue-chart", {
    type: "bar",
    data: { labels: data.queues.map(q => q.queue), datasets: [
      { label: "waiting", data: data.queues.map(q => q.waiting), backgroundColor: "#16406b" },
      { label: "being read", data: data.queues.map(q => q.being_read), backgroundColor: "#7fa7d0" },
      { label: "overdue", data: data.queues.map(q => q.overdue), backgroundColor: "#b3261e" }] },
    options: { indexAxis: "y", scales: { x: { stacked: false, beginAtZero: true } } } });

  const counties = [...new Set(data.compliance.map(c => c.county))];
  const stages = Object.keys(STAGES).filter(s => data.compliance.some(c => c.stage === s));
  draw("sla-chart", {
    type: "bar",
    data: { labels: counties, datasets: stages.map((s, i) => ({
      label: STAGES[s], backgroundColor: COLORS[i % COLORS.length],
      data: counties.map(county => {
        const c = data.compliance.find(x => x.county === county && x.stage === s);
        return c ? Math.round(c.share * 1000) / 10 : null;
      }) })) },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: "% within target" } } } } });

  const body = document.querySelector("#breaches tbody");
  body.replaceChildren();
  if (data.breaches.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 8;
    cell.className = "empty";
    cell.textContent = "no open breaches";
  }
  for (const b of data.breaches) {
    const row = body.insertRow();
    row.className = b.priority;
    for (const v of [b.exam_id, STAGES[b.stage] || b.stage, b.priority, b.exam_type, b.queue,
                     b.origin, b.due_at.substring(0, 16).replace("T", " "),
                     human(b.overrun_seconds)]) {
      row.insertCell().textContent = v;
    }
    row.cells[7].className = "num";
  }
  document.body.dataset.state = "ready";
}

async function refresh() {
  try {
    const response = await fetch("/dashboard/data.json", { credentials: "same-origin",
                                                            cache: "no-store" });
    if (!response.ok) throw new Error("data.json: HTTP " + response.status);
    render(await response.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = String(e);
    document.body.dataset.state = "error";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
