// Insights (analytics charts drawn as SVG, no library), the notifications panel (armed
// mode and each target's deliveries) and API tokens on the users page; app.js routes here.
"use strict";

import { $, api, el, jsonBody, labelColour, me, operates, show, usersMessage, when } from "./dom.js";
import { SVG_NS } from "./live.js";

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

// Events per hour over the range: one bar per hour (the labels stacked), with day ticks.
function hourChart(summary, from, to) {
  const HOUR = 3600000, W = 840, H = 160, PAD = 22;
  // Local hours (as the API buckets them with tz_offset_min), the current one included.
  const tz = -new Date().getTimezoneOffset() * 60000;
  const first = Math.floor((from + tz) / HOUR) * HOUR - tz;
  const hours = Math.floor((to - first) / HOUR) + 1;
  const byHour = new Map();
  for (const b of summary.per_label_hour) {
    const slot = byHour.get(b.start_ms) || [];
    slot.push(b);
    byHour.set(b.start_ms, slot);
  }
  const totals = [...byHour.values()].map((s) => s.reduce((n, b) => n + b.count, 0));
  const max = Math.max(1, ...totals);
  const bw = (W - PAD) / hours;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 18}`, class: "chart", id: "chart-hours", role: "img",
    "aria-label": "events per hour" });
  chart.append(svg("text", { x: 0, y: 10, class: "axis" }, String(max)));
  for (let i = 0; i < hours; i++) {
    const t = first + i * HOUR;
    let y = H;
    for (const b of byHour.get(t) || []) {
      const h = (b.count / max) * (H - 14);
      y -= h;
      const bar = svg("rect", { x: PAD + i * bw, y, width: Math.max(bw - 0.5, 0.5), height: h, fill: labelColour(b.label),
        "data-label": b.label, "data-count": b.count });
      bar.append(svg("title", {}, `${new Date(t).toLocaleString()}: ${b.count} ${b.label}`));
      chart.append(bar);
    }
    if (new Date(t).getHours() === 0) {
      chart.append(svg("line", { x1: PAD + i * bw, x2: PAD + i * bw, y1: 0, y2: H, class: "tick" }));
      chart.append(svg("text", { x: PAD + i * bw + 2, y: H + 14, class: "axis" },
        new Date(t).toLocaleDateString(undefined, { weekday: "short", day: "numeric" })));
    }
  }
  return chart;
}

// One horizontal bar per label (or camera), longest first.
function barChart(rows, id, name) {
  const W = 420, ROW = 22;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${rows.length * ROW + 4}`, class: "chart bars", id, role: "img",
    "aria-label": name });
  rows.forEach((r, i) => {
    const w = (r.count / max) * (W - 170);
    chart.append(svg("text", { x: 0, y: i * ROW + 15, class: "axis" }, r.name));
    chart.append(svg("rect", { x: 110, y: i * ROW + 3, width: Math.max(w, 1), height: ROW - 6,
      fill: labelColour(r.name), "data-label": r.name, "data-count": r.count }));
    chart.append(svg("text", { x: 116 + w, y: i * ROW + 15, class: "axis" }, String(r.count)));
  });
  return chart;
}

export async function pageInsights() {
  show("insights");
  const days = Number($("in-days").value || 7);
  const to = Date.now(), from = to - days * 86400000;
  const q = new URLSearchParams({ from, to, tz_offset_min: -new Date().getTimezoneOffset() });
  if ($("in-camera").value) q.set("camera", $("in-camera").value);
  const s = await api("/api/analytics?" + q);
  const secs = (v) => (v == null ? "–" : v < 120 ? v.toFixed(0) + " s" : (v / 60).toFixed(1) + " min");
  const facts = [["Events", String(s.total)], ["Acknowledged", `${s.acknowledged} (${s.unacknowledged} not yet)`],
    ["Mean duration", secs(s.mean_duration_s)], ["Longest", secs(s.longest_duration_s)],
    ["Busiest hours", s.busiest_hours.map((h) => `${h}:00`).join(", ") || "–"]];
  $("in-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  $("in-hours").replaceChildren(hourChart(s, from, to));
  $("in-labels").replaceChildren(barChart(s.per_label.map((l) => ({ name: l.label, count: l.count })), "chart-labels", "events per label"));
  $("in-cameras").replaceChildren(barChart(s.per_camera.map((c) => ({ name: c.camera, count: c.count })), "chart-cameras", "events per camera"));
}

// ---- Notifications: the armed mode and what each target did ----

export async function notifyPanel() {
  let n;
  try { n = await api("/api/notify"); } catch (e) { $("notify").hidden = true; return; }
  $("notify").hidden = false;
  for (const b of document.querySelectorAll("#armed button")) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === n.armed));
    b.disabled = !operates();
  }
  const ago = (ms) => (ms ? when(ms) : "never");
  $("notify-targets").tBodies[0].replaceChildren(...n.targets.map((t) => el("tr", { id: "target-" + t.name },
    el("td", { text: t.name }), el("td", { text: t.type + (t.connected === false ? " (disconnected)" : "") }),
    el("td", { text: String(t.sent) }), el("td", { text: String(t.failed) }),
    el("td", { class: t.rejected ? "bad" : "", text: String(t.rejected) }), el("td", { text: String(t.pending) }),
    el("td", { text: ago(t.last_ok_ms) }),
    el("td", { class: t.last_error ? "bad" : "", text: t.last_error ? `${t.last_error} (${when(t.last_error_ms)})` : "" }))));
}

export function setupNotify() {
  for (const b of document.querySelectorAll("#armed button")) {
    b.onclick = async () => {
      try {
        await api("/api/notify/armed", Object.assign({ method: "PUT" }, jsonBody({ mode: b.dataset.mode })));
        await notifyPanel();
      } catch (e) { $("notify-msg").textContent = e.message; }
    };
  }
}

// ---- API tokens (users page) ----

export async function tokensTable() {
  const { tokens } = await api("/api/tokens");
  $("tokens").tBodies[0].replaceChildren(...tokens.map((t) => {
    const revoke = el("button", { type: "button", text: "Revoke" });
    revoke.onclick = async () => {
      if (!confirm("Revoke token " + t.name + "? Scripts using it stop at their next request.")) return;
      try {
        await api("/api/tokens/" + encodeURIComponent(t.name), { method: "DELETE" });
        usersMessage("Revoked token " + t.name + ".");
        await tokensTable();
      } catch (e) { usersMessage(e.message, true); }
    };
    const used = t.last_used_ms ? `${when(t.last_used_ms)} from ${t.last_address} (${t.uses}×)` : "never";
    return el("tr", { id: "token-" + t.name }, el("td", { text: t.name }), el("td", { text: t.role }),
      el("td", { text: t.scopes }), el("td", { text: t.expires_ms ? when(t.expires_ms) : "never" }),
      el("td", { text: used }), el("td", {}, revoke));
  }));
}

export function setupTokenForm() {
  $("token-add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scopes = [...document.querySelectorAll("#token-add input[name=scope]:checked")].map((c) => c.value);
    const days = $("tk-days").value ? Number($("tk-days").value) : null;
    try {
      const r = await api("/api/tokens", Object.assign({ method: "POST" },
        jsonBody({ name: $("tk-name").value.trim(), role: $("tk-role").value, scopes, expires_days: days })));
      $("token-add").reset();
      $("tk-shown").textContent = r.token;
      $("tk-once").hidden = false;
      usersMessage("Token " + r.info.name + " made. Copy it now: it is not shown again.");
      await tokensTable();
    } catch (e) { usersMessage(e.message, true); }
  });
}
