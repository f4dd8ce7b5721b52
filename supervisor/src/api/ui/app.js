// The admin page: reads /status with the token kept in sessionStorage and runs the
// playground through /execute. Every value from the service is written with textContent.
"use strict";

const KEY = "isolate-service-token";
const POLL_MS = 3000;
const HISTORY = 40;
const $ = (id) => document.getElementById(id);
const history = [];
let timer = null;
let lastTotal = null;

function token() {
  return sessionStorage.getItem(KEY);
}

async function call(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
    redirect: "error",
  });
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = { error: "the answer is not JSON (HTTP " + res.status + ")" };
  }
  return { status: res.status, data };
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function fill(tbody, rows, columns) {
  const fresh = document.createElement("tbody");
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of columns) {
      const [text, cls] = c(r);
      cell(tr, text, cls);
    }
    fresh.appendChild(tr);
  }
  tbody.replaceWith(fresh);
}

function showLogin(message) {
  stop();
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("conn").textContent = "not connected";
  $("conn").className = "badge";
}

function stop() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function chart(canvas, series, colors) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1e-9, ...series.flat());
  ctx.fillStyle = "#667085";
  ctx.font = "11px sans-serif";
  ctx.fillText(max.toFixed(max < 10 ? 2 : 0), 4, 12);
  series.forEach((values, i) => {
    ctx.strokeStyle = colors[i];
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, x) => {
      const px = (x / Math.max(1, HISTORY - 1)) * (w - 8) + 4;
      const py = h - 4 - (v / max) * (h - 20);
      if (x === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
  });
}

function render(status) {
  const q = status.queue;
  $("version").textContent = "v" + status.supervisor.version;
  const figures = $("queue");
  figures.replaceChildren();
  for (const [k, v] of [["idle", q.idle], ["busy", q.busy], ["queued", q.queued],
    ["max concurrent", q.maxConcurrent], ["zygote pid", status.zygote.pid],
    ["memory fit", status.memory ? status.memory.action : "?"]]) {
    const s = document.createElement("span");
    s.textContent = k + ": " + v;
    figures.appendChild(s);
  }
  fill($("workers").tBodies[0], status.workers, [
    (w) => [w.pid], (w) => [w.state], (w) => [w.executions],
    (w) => [w.ageSeconds.toFixed(1)],
    (w) => [w.rssBytes ? (w.rssBytes / 1048576).toFixed(1) : "?"],
    (w) => [w.seccomp === 2 ? "filtered" : "off", w.seccomp === 2 ? "on" : "off"],
    (w) => ["ABI " + w.landlockAbi + " (" + w.landlockStatus + ")", w.landlockAbi > 0 ? "on" : "off"],
    (w) => [w.noNewPrivs ? "yes" : "no", w.noNewPrivs ? "on" : "off"],
  ]);
  const layers = $("layers");
  layers.replaceChildren();
  for (const name of ["seccomp", "noNewPrivs", "landlock", "namespaces"]) {
    const li = document.createElement("li");
    const active = status.sandbox[name].active;
    li.textContent = name + ": " + (active ? "active" : "INACTIVE");
    li.className = active ? "on" : "off";
    layers.appendChild(li);
  }
  const li = document.createElement("li");
  li.textContent = "rlimits: " + (status.sandbox.rlimits.enabled ? "applied" : "off");
  li.className = status.sandbox.rlimits.enabled ? "on" : "off";
  layers.appendChild(li);
  const errorsOf = (t) => Object.values(t.errors).reduce((a, b) => a + b, 0);
  const quota = (n, limit) => (limit === null || limit === undefined ? String(n) : n + " / " + limit);
  fill($("keys").tBodies[0], status.keys || [], [
    (k) => [k.name], (k) => [k.scopes.join(", ")], (k) => [k.totals.executions],
    (k) => [errorsOf(k.totals), errorsOf(k.totals) ? "fail" : "on"],
    (k) => [k.totals.cpuMs.toFixed(1)], (k) => [k.totals.egressBytes],
    (k) => [quota(k.today.executions, k.today.executionsPerDay)],
  ]);
  const recent = status.recent || [];
  fill($("recent").tBodies[0], recent.slice().reverse(), [
    (r) => [new Date(r.at).toLocaleTimeString()], (r) => [r.id], (r) => [r.key],
    (r) => [r.preset], (r) => [r.outcome, r.outcome === "ok" ? "on" : "fail"],
    (r) => [r.ms.toFixed(1)],
  ]);
  const total = status.executions;
  const rate = lastTotal === null ? 0 : Math.max(0, total - lastTotal) / (POLL_MS / 1000);
  lastTotal = total;
  const window = recent.filter((r) => Date.now() - r.at < 60000).map((r) => r.ms).sort((a, b) => a - b);
  history.push({ rate, p50: percentile(window, 50), p95: percentile(window, 95) });
  while (history.length > HISTORY) history.shift();
  chart($("throughput"), [history.map((h) => h.rate)], ["#1f6feb"]);
  chart($("latency"), [history.map((h) => h.p50), history.map((h) => h.p95)], ["#12794a", "#b42318"]);
}

async function refresh() {
  let res;
  try {
    res = await call("GET", "/status");
  } catch (e) {
    $("conn").textContent = "unreachable";
    $("conn").className = "badge off";
    return;
  }
  if (res.status === 401 || res.status === 403) {
    sessionStorage.removeItem(KEY);
    showLogin("The service refused the token (HTTP " + res.status + ").");
    return;
  }
  if (res.status === 429) {
    $("conn").textContent = "rate limited";
    return;
  }
  if (res.status !== 200) {
    $("conn").textContent = "HTTP " + res.status;
    return;
  }
  $("conn").textContent = "connected";
  $("conn").className = "badge ok";
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  render(res.data);
}

function start() {
  stop();
  refresh();
  timer = setInterval(refresh, POLL_MS);
}

async function run(event) {
  event.preventDefault();
  const body = { code: $("code").value, preset: $("preset").value };
  const envText = $("env").value.trim();
  $("outcome").hidden = false;
  if (envText) {
    try {
      body.env = JSON.parse(envText);
    } catch (e) {
      $("outcome-title").textContent = "env is not valid JSON";
      $("outcome-title").className = "fail";
      $("result").textContent = String(e.message);
      $("logs").textContent = "";
      return;
    }
  }
  $("run").disabled = true;
  $("outcome-title").textContent = "running…";
  $("outcome-title").className = "";
  try {
    const { status, data } = await call("POST", "/execute", body);
    const ok = status === 200 && data.success === true;
    if (ok) {
      $("outcome-title").textContent = "Result (" + data.stats.elapsed + " ms)";
      $("result").textContent = JSON.stringify(data.result, null, 2);
    } else {
      const e = data.error;
      const kind = e && typeof e === "object" ? e.type : "HTTP " + status;
      const message = e && typeof e === "object" ? e.message : String(e);
      $("outcome-title").textContent = "Error: " + kind;
      $("result").textContent = message + (e && e.stack ? "\n" + e.stack : "");
    }
    $("outcome-title").className = ok ? "on" : "fail";
    $("logs").textContent = (data.logs || []).map((l) => "[" + l.level + "] " + l.message).join("\n");
  } catch (e) {
    $("outcome-title").textContent = "The service could not be reached";
    $("outcome-title").className = "fail";
    $("result").textContent = String(e.message);
  } finally {
    $("run").disabled = false;
    refresh();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showLogin("");
  });
  $("play").addEventListener("submit", run);
  if (token()) start();
  else showLogin("");
});
