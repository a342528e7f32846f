// RDG dashboard: draws /dashboard/data.json with Chart.js (served by the gateway) and refreshes
// every 30 s, in Chinese or English: ?lang=zh|en, else the choice made with the header's switch
// (kept in localStorage), else Chinese when the browser asks for zh, else English. Institutions,
// counties and queues are shown by their configured names. After each draw every canvas carries
// data-points (points drawn), the body data-state="ready" and data-clipped (how many table
// cells, captions or tiles are too narrow for their text; 0 when everything shows), for people
// and for the browser test alike.
"use strict";

const REFRESH_MS = 30000;
const COLORS = ["#16406b", "#d9822b", "#2e8540", "#8e3ca8", "#b3261e", "#00838f", "#6d4c41",
                "#5c6bc0"];
const TEXT = {
  en: {
    title: "RDG · Remote Diagnosis Gateway — turnaround and SLA",
    completed: "Stages completed (24 h)", depth: "Exams waiting or being read",
    overdue: "Overdue in queues", breaches: "Open SLA breaches",
    tat: "Received → final report by county: p50 (solid) and p90 (dashed), minutes, by hour",
    queues: "Queue depth now",
    sla: "SLA compliance by county, last 24 h (% of completed stages within target)",
    open: "Open SLA breaches, most overdue first",
    exam: "Exam", stage: "Stage", priority: "Priority", type: "Type", queue: "Queue",
    from: "From", due: "Due", overrun: "Overrun", as_of: "as of", minutes: "minutes",
    within: "% within target", waiting: "waiting", being_read: "being read",
    overdue_bar: "overdue", none: "no open breaches", min: "min", h: "h",
    conflicts: "Identity conflicts (24 h)", glass: "Priors seen by breaking the glass (24 h)",
    glass_table: "Priors and reports seen without a claim (break the glass), last 24 h", at: "At",
    reader: "Reader", institution: "Institution", reason: "Seen (reason: rdg-admin audit)",
    seen: { priors: "priors", reports: "reports" },
    no_glass: "nobody broke the glass",
    stages: { claim: "received→claimed", final: "received→final", ack: "final→acknowledged",
              critical_ack: "critical ack" },
    priorities: { STAT: "STAT", URGENT: "URGENT", ROUTINE: "ROUTINE" },
  },
  zh: {
    title: "RDG 远程诊断平台 — 报告时效与 SLA",
    completed: "24 小时内完成环节", depth: "待读与在读检查", overdue: "队列中已超时",
    breaches: "未关闭的 SLA 超时",
    tat: "各县接收 → 正式报告用时：p50（实线）与 p90（虚线），分钟，按小时",
    queues: "当前队列", sla: "各县 SLA 达标率，近 24 小时（按时完成环节的百分比）",
    open: "未关闭的 SLA 超时，超时最久者在前",
    exam: "检查", stage: "环节", priority: "优先级", type: "类型", queue: "队列",
    from: "送检机构", due: "应完成", overrun: "已超时", as_of: "更新于", minutes: "分钟",
    within: "达标百分比", waiting: "待读", being_read: "在读", overdue_bar: "已超时",
    none: "没有未关闭的超时", min: "分钟", h: "小时",
    conflicts: "患者身份冲突（24 小时）", glass: "紧急调阅既往检查（24 小时）",
    glass_table: "未领取检查而紧急调阅既往检查或报告（破窗），近 24 小时", at: "时间",
    reader: "阅片医师", institution: "机构", reason: "调阅内容（理由见 rdg-admin audit）",
    no_glass: "无紧急调阅", seen: { priors: "既往检查", reports: "报告" },
    stages: { claim: "接收→领取", final: "接收→正式报告", ack: "报告→确认收到",
              critical_ack: "危急值确认" },
    priorities: { STAT: "急诊 STAT", URGENT: "加急 URGENT", ROUTINE: "常规 ROUTINE" },
  },
};
const charts = {};
let lang = chooseLanguage();
let lastData = null;

function chooseLanguage() {
  const known = l => l === "zh" || l === "en";
  const asked = new URLSearchParams(location.search).get("lang");
  if (known(asked)) return asked;
  const saved = localStorage.getItem("rdg-dashboard-lang");
  if (known(saved)) return saved;
  // The browser's preferences in order: the first Chinese or English one decides.
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages
                                                                    : [navigator.language || ""];
  for (const l of wanted) {
    if (l.toLowerCase().startsWith("zh")) return "zh";
    if (l.toLowerCase().startsWith("en")) return "en";
  }
  return "en";
}

function t(key) { return TEXT[lang][key]; }

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const b of document.querySelectorAll("#lang button")) {
    b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
  }
}

function minutes(seconds) { return seconds === null ? null : Math.round(seconds / 6) / 10; }

function human(seconds) {
  if (seconds < 3600) return Math.round(seconds / 60) + " " + t("min");
  return Math.floor(seconds / 3600) + " " + t("h") + " " + Math.round(seconds % 3600 / 60) + " " +
         t("min");
}

//! Elements whose text does not fit their box (a clipped column or caption).
function countClipped() {
  let clipped = 0;
  for (const el of document.querySelectorAll("th, td, figcaption, .tile, header")) {
    if (el.scrollWidth > el.clientWidth + 1) clipped++;
  }
  for (const table of document.querySelectorAll("table")) {
    if (table.scrollWidth > table.parentElement.clientWidth + 1) clipped++;
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) clipped++;
  return clipped;
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
  lastData = data;
  applyLanguage();
  const STAGES = t("stages");
  document.getElementById("updated").textContent =
      t("as_of") + " " + data.generated_at.substring(0, 19).replace("T", " ") + " " +
      data.time_zone;
  // The zone's abbreviation in the column header; its full name is in the header line above.
  const abbreviation = (data.time_zone.match(/\(([^)]*)\)$/) || [null, data.time_zone])[1];
  document.getElementById("due-header").textContent = t("due") + " (" + abbreviation + ")";
  document.getElementById("due-header").title = data.time_zone;
  const depth = data.queues.reduce((n, q) => n + q.depth, 0);
  const overdue = data.queues.reduce((n, q) => n + q.overdue, 0);
  document.getElementById("tile-completed").textContent = data.totals.completed_stages;
  document.getElementById("tile-depth").textContent = depth;
  document.getElementById("tile-overdue").textContent = overdue;
  document.getElementById("tile-breaches").textContent = data.totals.open_breaches;
  document.getElementById("tile-conflicts").textContent = data.totals.identity_conflicts;
  document.getElementById("tile-glass").textContent = data.totals.break_glass;

  const hours = data.tat.hours.map(h => h.substring(11, 16));
  const tat = [];
  data.tat.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    tat.push({ label: s.county_name + " p50", data: s.p50.map(minutes), borderColor: color,
               backgroundColor: color, spanGaps: true });
    tat.push({ label: s.county_name + " p90", data: s.p90.map(minutes), borderColor: color,
               backgroundColor: color, borderDash: [6, 4], spanGaps: true });
  });
  draw("tat-chart", { type: "line", data: { labels: hours, datasets: tat },
                      options: { scales: { y: { beginAtZero: true,
                                                title: { display: true, text: t("minutes") } } } } });

  draw("queue-chart", {
    type: "bar",
    data: { labels: data.queues.map(q => q.queue_name), datasets: [
      { label: t("waiting"), data: data.queues.map(q => q.waiting), backgroundColor: "#16406b" },
      { label: t("being_read"), data: data.queues.map(q => q.being_read),
        backgroundColor: "#7fa7d0" },
      { label: t("overdue_bar"), data: data.queues.map(q => q.overdue),
        backgroundColor: "#b3261e" }] },
    options: { indexAxis: "y", scales: { x: { stacked: false, beginAtZero: true } } } });

  const counties = [...new Set(data.compliance.map(c => c.county))];
  const countyName = county => (data.compliance.find(c => c.county === county) || {}).county_name;
  const stages = Object.keys(STAGES).filter(s => data.compliance.some(c => c.stage === s));
  draw("sla-chart", {
    type: "bar",
    data: { labels: counties.map(countyName), datasets: stages.map((s, i) => ({
      label: STAGES[s], backgroundColor: COLORS[i % COLORS.length],
      data: counties.map(county => {
        const c = data.compliance.find(x => x.county === county && x.stage === s);
        return c ? Math.round(c.share * 1000) / 10 : null;
      }) })) },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: t("within") } } } } });

  const body = document.querySelector("#breaches tbody");
  body.replaceChildren();
  if (data.breaches.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 8;
    cell.className = "empty";
    cell.textContent = t("none");
  }
  for (const b of data.breaches) {
    const row = body.insertRow();
    row.className = b.priority;
    for (const v of [b.exam_id, STAGES[b.stage] || b.stage, t("priorities")[b.priority] || b.priority,
                     b.exam_type, b.queue_name, b.origin_name,
                     b.due_at.substring(0, 16).replace("T", " "), human(b.overrun_seconds)]) {
      row.insertCell().textContent = v;
    }
    row.cells[4].title = b.queue;  // the ids, for whoever needs them
    row.cells[5].title = b.origin;
    row.cells[7].className = "num";
  }
  const glass = document.querySelector("#glass tbody");
  glass.replaceChildren();
  if (data.break_glass.length === 0) {
    const cell = glass.insertRow().insertCell();
    cell.colSpan = 5;
    cell.className = "empty";
    cell.textContent = t("no_glass");
  }
  for (const g of data.break_glass) {
    const row = glass.insertRow();
    for (const v of [g.at.substring(0, 16).replace("T", " "), g.user, g.institution_name,
                     g.exam_id, t("seen")[g.what] || g.what]) {
      row.insertCell().textContent = v;
    }
    row.cells[2].title = g.institution;
  }
  document.body.dataset.clipped = countClipped();
  document.body.dataset.state = "ready";
}

for (const b of document.querySelectorAll("#lang button")) {
  b.addEventListener("click", () => {
    lang = b.dataset.lang;
    localStorage.setItem("rdg-dashboard-lang", lang);
    if (lastData) render(lastData); else applyLanguage();
  });
}
applyLanguage();

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
