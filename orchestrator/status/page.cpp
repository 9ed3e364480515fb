// The page served at "/" by the status server. Self-contained (inline CSS and script, no external
// resources); it writes text only through textContent, so job errors and host names cannot inject
// markup.
#include "orchestrator/status/page.h"

namespace mil::orch {

const std::string& status_page_html() {
  static const std::string kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mhim sweep status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
.muted { color: #666; }
.ok { color: #1a7f37; } .bad { color: #c62828; }
.counts { display: flex; flex-wrap: wrap; gap: .6em; margin: .8em 0; }
.count { border: 1px solid #ddd; border-radius: 6px; padding: .4em .8em; min-width: 6em; }
.count b { display: block; font-size: 1.4em; }
.bar { height: 14px; background: #eee; border-radius: 7px; overflow: hidden; display: flex; max-width: 60em; }
#bar-ok { background: #2e7d32; } #bar-bad { background: #c62828; } #bar-run { background: #90caf9; }
table { border-collapse: collapse; margin-top: .3em; }
th, td { text-align: left; padding: .2em .8em .2em 0; border-bottom: 1px solid #eee; vertical-align: top; }
td.err { font-family: monospace; white-space: pre-wrap; max-width: 60em; }
tr.stale td { color: #c62828; }
</style>
</head>
<body>
<h1>Sweep <span id="sweep-name">…</span></h1>
<div class="muted">started <span id="started">?</span> · up <span id="uptime">?</span> ·
  <span id="conn">connecting…</span></div>
<div class="counts">
  <div class="count">total<b id="count-total">?</b></div>
  <div class="count">done<b id="count-done">?</b></div>
  <div class="count">skipped<b id="count-skipped">?</b></div>
  <div class="count">running<b id="count-running">?</b></div>
  <div class="count">committing<b id="count-committing">?</b></div>
  <div class="count">pending<b id="count-pending">?</b></div>
  <div class="count">failed<b id="count-failed">?</b></div>
  <div class="count">quarantined<b id="count-quarantined">?</b></div>
  <div class="count">pruned<b id="count-pruned">?</b></div>
</div>
<div class="bar" title="done and skipped · failed and quarantined · running">
  <div id="bar-ok" style="width:0"></div><div id="bar-bad" style="width:0"></div><div id="bar-run" style="width:0"></div>
</div>
<p><span id="progress-text">?</span> · <span id="throughput">?</span> · ETA <span id="eta">?</span></p>
<h2>Running (<span id="running-count">0</span>)</h2>
<table><thead><tr><th>job</th><th>method</th><th>dataset</th><th>fold</th><th>seed</th><th>rank</th><th>host</th>
<th>elapsed</th><th>epoch</th><th>job ETA</th></tr></thead><tbody id="running-rows"></tbody></table>
<h2>Workers (<span id="worker-count">0</span>)</h2>
<table><thead><tr><th>rank</th><th>host</th><th>state</th><th>last seen</th><th>job</th><th>finished</th></tr></thead>
<tbody id="worker-rows"></tbody></table>
<h2>Failures (<span id="failure-count">0</span>)</h2>
<table><thead><tr><th>job</th><th>status</th><th>method</th><th>dataset</th><th>fold</th><th>seed</th><th>error</th></tr></thead>
<tbody id="failure-rows"></tbody></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const kMaxRows = 200;  // a 3,000-job sweep with many failures stays responsive
function duration(s) {
  if (s === null || s === undefined || !isFinite(s) || s < 0) return "?";
  s = Math.floor(s);
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h " + pad(Math.floor(s % 3600 / 60)) + "m";
  return Math.floor(s / 86400) + "d " + pad(Math.floor(s % 86400 / 3600)) + "h";
}
function rate(r) { return r === null || r === undefined ? "? jobs/h" : (r < 10 ? r.toFixed(1) : Math.round(r)) + " jobs/h"; }
function fill(tbody, items, cells, rowClass) {
  const rows = items.slice(0, kMaxRows).map((item) => {
    const tr = document.createElement("tr");
    if (rowClass) tr.className = rowClass(item);
    cells(item).forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text === null || text === undefined ? "" : String(text);
      if (tbody.id === "failure-rows" && i === 6) td.className = "err";
      tr.appendChild(td);
    });
    return tr;
  });
  tbody.replaceChildren(...rows);
}
function render(s) {
  const c = s.counts;
  $("sweep-name").textContent = s.sweep.name || "(unnamed)";
  document.title = "mhim · " + (s.sweep.name || "sweep") + " · " + (c.done + c.skipped) + "/" + c.total;
  $("started").textContent = s.sweep.started_at;
  $("uptime").textContent = duration(s.sweep.uptime_s);
  for (const k of ["total", "done", "skipped", "running", "committing", "pending", "failed", "quarantined", "pruned"]) $("count-" + k).textContent = c[k];
  const pct = (n) => (c.total > 0 ? (100 * n / c.total) : 0).toFixed(2) + "%";
  $("bar-ok").style.width = pct(c.done + c.skipped);
  $("bar-bad").style.width = pct(c.failed + c.quarantined);
  $("bar-run").style.width = pct(c.running);
  $("progress-text").textContent = s.sweep.phase === "starting"
      ? "starting: listing the jobs and the results of earlier runs"
      : (c.done + c.skipped) + "/" + c.total + " done (" + Math.round(100 * s.progress.fraction) + "% finished)";
  const t = s.throughput;
  $("throughput").textContent = rate(t.recent_jobs_per_h !== null ? t.recent_jobs_per_h : t.sweep_jobs_per_h);
  $("eta").textContent = duration(s.eta_s);
  $("running-count").textContent = s.running.length;
  fill($("running-rows"), s.running, (r) => [r.job_id, r.method, r.dataset, r.fold, r.seed, r.rank, r.host,
      duration(r.elapsed_s), r.epoch === null ? "" : r.epoch + "/" + r.epochs, r.eta_s === null ? "" : duration(r.eta_s)]);
  $("worker-count").textContent = s.workers.length;
  fill($("worker-rows"), s.workers, (w) => [w.rank, w.host, w.state, duration(w.last_seen_age_s) + " ago",
      w.job_id, w.jobs_finished], (w) => w.state);
  $("failure-count").textContent = s.failures.length;
  fill($("failure-rows"), s.failures, (f) => [f.job_id, f.status, f.method, f.dataset, f.fold, f.seed, f.error]);
}
async function tick() {
  const conn = $("conn");
  try {
    const response = await fetch("status.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    conn.textContent = "live, updated " + new Date().toLocaleTimeString();
    conn.className = "ok";
  } catch (e) {
    conn.textContent = "no answer (" + e.message + "): the sweep may have ended";
    conn.className = "bad";
  } finally {
    setTimeout(tick, 2000);
  }
}
tick();
</script>
</body>
</html>
)HTML";
  return kPage;
}

}  // namespace mil::orch
