// The dashboard: live tiles and one camera's full view, the event list, the clip player,
// the system and users pages, routing and the event stream. The other pages are modules of
// their own: timeline.js (the timeline and its player), insights.js (insights,
// notifications, API tokens), live.js (live players); dom.js holds the shared helpers.
// No framework and no inline script (the CSP forbids it); state lives in the URL hash.
"use strict";

import { $, api, el, jsonBody, me, onPageChange, operates, setMe, show, usersMessage, when } from "./dom.js";
import { pageAddCamera, setupAddCamera, setupZoneEditor, showZoneEditor } from "./cameras.js";
import { notifyPanel, pageInsights, setupNotify, setupTokenForm, tokensTable } from "./insights.js";
import { LivePlayer } from "./live.js";
import { onReviewMessage, pageReview, setReviewCameras, setupReview } from "./review.js";
import { pageTimeline, setupTimeline } from "./timeline.js";

// The live players on screen; stopped when the page changes.
let players = [];

function stopPlayers() {
  for (const p of players) p.stop();
  players = [];
}
onPageChange(stopPlayers);

async function pageLive() {
  show("live");
  const grid = $("grid");
  const { cameras } = await api("/api/cameras");
  grid.replaceChildren(...cameras.map((c) => {
    const view = el("div", { class: "tile-view", id: "view-" + c.id, "data-camera": c.id });
    return el("div", { class: "tile", id: "tile-" + c.id }, view,
      el("div", { class: "bar" }, el("a", { href: "#camera/" + encodeURIComponent(c.id), text: c.name || c.id }),
        el("span", { class: "badge", id: "badge-" + c.id, text: c.enabled ? "…" : "disabled" })),
      el("p", { class: "trouble", id: "trouble-" + c.id, hidden: true }));
  }));
  for (const c of cameras) {
    if (!c.enabled) continue;
    badge(c);
    if (c.alarm_only) showLastPicture($("view-" + c.id), c.id).catch(console.error);
    else players.push(new LivePlayer($("view-" + c.id), c.id, null));
  }
}

// An alarm-only camera has no stream: its view shows the newest alarm picture.
async function showLastPicture(view, id) {
  const { events } = await api("/api/events?camera=" + encodeURIComponent(id) + "&limit=5");
  const e = events.find((x) => x.has_snapshot);
  view.replaceChildren(e
    ? el("img", { class: "last-picture", src: "/api/events/" + e.id + "/snapshot.jpg", alt: "last alarm picture of " + id })
    : el("p", { class: "note", text: "No alarm picture yet" }));
}

// One camera, large, from its main stream; the button makes it full screen.
async function pageCamera(id) {
  show("camera");
  const { cameras } = await api("/api/cameras");
  const c = cameras.find((x) => x.id === id);
  $("camera-title").textContent = c ? c.name || c.id : id;
  const view = $("camera-view");
  view.dataset.camera = id;
  const alarm = $("camera-alarm");
  alarm.hidden = !(c && c.alarm_address);
  alarm.textContent = c && c.alarm_address ? "Alarm pictures: have the camera e-mail them to " + c.alarm_address : "";
  const trouble = $("camera-trouble");
  trouble.dataset.camera = id;
  showTrouble(trouble, c || {});
  showZoneEditor(c, me.user_type === "admin");
  if (c && c.alarm_only) await showLastPicture(view, id);
  else players.push(new LivePlayer(view, id, "main"));
  $("camera-full").onclick = () => view.requestFullscreen().catch(() => {});
}

function eventItem(e) {
  const li = el("li", { id: "event-" + e.id, class: e.acknowledged ? "acknowledged" : "" });
  li.append(e.has_snapshot ? el("img", { src: "/api/events/" + e.id + "/snapshot.jpg", alt: e.label }) : el("span"));
  const text = el("div", {}, el("strong", { text: e.label + " " + Math.round(e.max_score * 100) + "%" }),
    el("div", { text: e.camera_id + " · " + when(e.start_ms) + (e.end_ms ? "" : " · ongoing") }));
  li.append(text);
  if (e.clip_id) li.append(el("a", { href: "#clip/" + e.clip_id, class: "clip-link", text: "Play clip" }));
  if (e.clip_salvaged) li.append(el("span", { class: "badge salvaged", text: "salvaged", title: e.clip_salvaged }));
  if (e.clip_offsite && e.clip_offsite !== "local") li.append(offsiteBadge(e.clip_offsite));
  else li.append(el("a", { href: "#timeline/" + encodeURIComponent(e.camera_id) + "/" + e.start_ms, class: "timeline-link", text: "Play" }));
  if (operates()) li.append(keepButton(e));
  if (operates() && !e.acknowledged) {
    const b = el("button", { type: "button", class: "ack", text: "Acknowledge" });
    b.onclick = async () => { await api("/api/events/" + e.id + "/ack", { method: "POST" }); li.classList.add("acknowledged"); b.remove(); };
    li.append(b);
  }
  return li;
}

// Where a clip's off-site copy stands: queued, uploaded, or failed (the reason on hover).
function offsiteBadge(state) {
  const kind = state.startsWith("failed") ? "failed" : state;
  return el("span", { class: "offsite offsite-" + kind, title: "off-site copy: " + state, text: "off-site: " + kind });
}

// Keep (or stop keeping) an event's footage past the age limits.
function keepButton(e) {
  const b = el("button", { type: "button", class: "keep", "aria-pressed": String(!!e.keep) });
  const label = () => { b.textContent = e.keep ? "Kept" : "Keep"; b.setAttribute("aria-pressed", String(!!e.keep)); };
  label();
  b.title = "kept footage outlives the age limits and goes last when the disk is full";
  b.onclick = async () => {
    const r = await api("/api/events/" + e.id + "/keep", Object.assign({ method: "POST" }, jsonBody({ keep: !e.keep })));
    e.keep = r.keep;
    label();
  };
  return b;
}

async function pageEvents() {
  show("events");
  const q = new URLSearchParams();
  if ($("f-camera").value) q.set("camera", $("f-camera").value);
  if ($("f-label").value.trim()) q.set("label", $("f-label").value.trim());
  if ($("f-day").value) {
    const start = new Date($("f-day").value + "T00:00:00");
    q.set("since", String(start.getTime()));
    q.set("until", String(start.getTime() + 86400000));
  }
  const { events } = await api("/api/events?" + q.toString());
  $("events").replaceChildren(...events.map(eventItem));
}

async function pageClip(id) {
  show("clip");
  const c = await api("/api/clips/" + encodeURIComponent(id));
  $("clip-title").textContent = c.camera_id + " · " + when(c.start_ms);
  const v = $("player");
  v.src = "/clips/" + c.id + ".mp4";
  $("download").href = "/clips/" + c.id + ".mp4?download=1";
  const rows = [["Duration", (c.duration_ms / 1000).toFixed(1) + " s"], ["Labels", c.labels.join(", ") || "-"],
    ["Size", c.width + "x" + c.height + " " + c.codec], ["State", c.state], ["Off-site", c.offsite]];
  if (c.salvaged) rows.push(["Salvaged", c.salvaged]);
  if (c.damage) rows.push(["Damaged", c.damage]);
  for (const d of c.damaged_files || []) {
    rows.push(["Damage found", d.kind + ", by " + d.found_by + " " + when(d.found_ms) + ": " + d.problem + " (" + d.outcome + ")"]);
  }
  $("clip-meta").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

// The background scrub in one line: what it has read and when its last pass ended.
function scrubLine(s) {
  const read = (s.bytes / 1e6).toFixed(0) + " MB read at " + s.mb_per_s.toFixed(1) + " MB/s since start";
  return (s.last_pass_end_ms ? "last pass ended " + when(s.last_pass_end_ms) + "; " : "no pass finished since start; ") + read;
}

// The System page's "Test a camera" form (admins): what a URL sends, or why it fails.
function setupProbe() {
  $("probe").hidden = false;
  $("probe").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = $("probe-msg"), picture = $("probe-picture");
    msg.className = "msg";
    msg.textContent = "Connecting…";
    picture.hidden = true;
    $("probe-go").disabled = true;
    try {
      const r = await api("/api/cameras/probe", Object.assign({ method: "POST" },
        jsonBody({ url: $("probe-url").value.trim(), transport: $("probe-transport").value })));
      if (!r.ok) {
        msg.className = "msg bad";
        msg.textContent = r.trouble.message;
        msg.title = r.trouble.detail;
        return;
      }
      msg.textContent = [r.codec.toUpperCase() + (r.profile ? " " + r.profile : ""), r.width + "×" + r.height,
        r.fps + " fps", Math.round(r.bitrate_kbps) + " kbit/s", r.gop_frames ? "a keyframe every " + r.gop_frames + " pictures" : null,
        r.audio === null ? null : r.audio ? "with audio" : "no audio", "over " + r.transport.toUpperCase() + " (" + r.client + " client)",
        "in " + (r.took_ms / 1000).toFixed(1) + " s"].filter(Boolean).join(" · ");
      if (r.picture) { picture.src = r.picture; picture.hidden = false; }
    } catch (e) {
      msg.className = "msg bad";
      msg.textContent = e.message;
    } finally {
      $("probe-go").disabled = false;
    }
  });
}

async function pageSystem() {
  show("system");
  const h = await api("/api/health");
  const gb = (b) => (b >= 1e9 ? (b / 1e9).toFixed(2) + " GB" : (b / 1e6).toFixed(1) + " MB");
  const r = h.retention;
  const keep = [r.max_size_bytes ? "up to " + gb(r.max_size_bytes) : null, r.event_days ? "events " + r.event_days + " days" : null,
    r.continuous_days ? "continuous " + r.continuous_days + " days" : null,
    r.min_free_percent ? r.min_free_percent + "% disk kept free" : null].filter(Boolean).join(", ") || "everything";
  const rows = [["Version", "sentrix " + h.versions.sentrix + ", " + h.versions.gstreamer],
    ["Uptime", Math.round(h.uptime_s / 60) + " min"], ["Retention", keep], ["Model", h.model || "none (motion only)"],
    ["Cameras", h.cameras.join(", ")], ["Clips", String(h.storage.clips)],
    ["Recordings", gb(h.storage.used_bytes)], ["Disk free", gb(h.storage.free_bytes) + " of " + gb(h.storage.total_bytes)],
    ["Damaged files", String(h.storage.damaged_files)], ["Integrity scrub", scrubLine(h.scrub)]];
  for (const d of h.detectors || []) {
    const gated = Math.round(d.gated_share * 100) + "% of frames skipped by the motion gate";
    rows.push(["Detector " + d.camera, h.model ? d.mean_infer_ms.toFixed(1) + " ms, " + d.effective_fps.toFixed(1) + " fps, " + gated : "motion only"]);
  }
  if (me && me.user_type === "admin") {
    const o = await api("/api/offsite");
    if (o.enabled) {
      rows.push(["Off-site", o.uploaded + " clips in " + o.bucket + " under " + o.prefix + "/, " +
        (o.queued + o.failed) + " waiting (" + gb(o.waiting_bytes) + ")"]);
      if (o.last_error) rows.push(["Off-site error", o.last_error]);
    }
  }
  $("system").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  await notifyPanel();
}

// A random password from an unambiguous alphabet (as `sentrix user add` makes), with
// rejection sampling so every character is equally likely.
function generatePassword() {
  const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const out = [];
  while (out.length < 20) {
    for (const b of crypto.getRandomValues(new Uint8Array(32))) {
      if (b < 256 - (256 % alphabet.length) && out.length < 20) out.push(alphabet[b % alphabet.length]);
    }
  }
  return out.join("");
}

// "locked until …" with an Unlock button while a user name is locked against unknown
// devices (browsers that logged in before are not bound by it).
function lockCell(u) {
  if (!u.locked_until_ms) return el("span", { text: "" });
  const unlock = el("button", { type: "button", class: "unlock", text: "Unlock" });
  unlock.onclick = async () => {
    try {
      await api("/api/users/" + encodeURIComponent(u.name) + "/unlock", { method: "POST" });
      usersMessage("Unlocked " + u.name + ".");
      await pageUsers();
    } catch (e) { usersMessage(e.message, true); }
  };
  return el("span", {}, el("span", { text: "locked until " + when(u.locked_until_ms) + " " }), unlock);
}

async function pageUsers() {
  show("users");
  const { users } = await api("/api/users");
  $("users").tBodies[0].replaceChildren(...users.map((u) => {
    const remove = el("button", { type: "button", class: "remove", text: "Remove" });
    remove.disabled = u.name === me.username;
    remove.onclick = async () => {
      if (!confirm("Remove " + u.name + "? They are signed out at once.")) return;
      try {
        await api("/api/users/" + encodeURIComponent(u.name), { method: "DELETE" });
        usersMessage("Removed " + u.name + ".");
        await pageUsers();
      } catch (e) { usersMessage(e.message, true); }
    };
    return el("tr", { id: "user-" + u.name }, el("td", { text: u.name }), el("td", { text: u.role }),
      el("td", { text: when(u.created_ms) }), el("td", {}, lockCell(u)), el("td", {}, remove));
  }));
  const current = $("up-name").value;
  $("up-name").replaceChildren(...users.map((u) => el("option", { value: u.name, text: u.name })));
  if (users.some((u) => u.name === current)) $("up-name").value = current;
  await tokensTable();
}

function setupUserForms() {
  $("ua-generate").onclick = () => { $("ua-password").value = generatePassword(); };
  $("up-generate").onclick = () => { $("up-password").value = generatePassword(); };
  $("user-add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const username = $("ua-name").value.trim();
    try {
      await api("/api/users", Object.assign({ method: "POST" },
        jsonBody({ username, role: $("ua-role").value, password: $("ua-password").value })));
      $("user-add").reset();
      usersMessage("Added " + username + ". Give them the password; it is not shown again.");
      await pageUsers();
    } catch (e) { usersMessage(e.message, true); }
  });
  $("user-passwd").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("up-name").value;
    try {
      await api("/api/users/" + encodeURIComponent(name) + "/password",
        Object.assign({ method: "PUT" },
          jsonBody({ password: $("up-password").value, current_password: $("up-current").value })));
      $("user-passwd").reset();
      usersMessage("Password of " + name + " changed; their other sessions ended.");
      await pageUsers();
    } catch (e) { usersMessage(e.message, true); }
  });
}

// A tile's badge: the camera's state, or "failed" with health's reason (a dead recorder,
// a stuck detector) as its tooltip.
function badge(c) {
  const b = $("badge-" + c.id);
  const page = $("camera-trouble");
  if (page.dataset.camera === c.id) showTrouble(page, c);
  if (!b) return;
  const state = c.problem ? "failed" : c.state;
  b.textContent = state;
  b.className = "badge " + state;
  b.title = c.problem || "";
  showTrouble($("trouble-" + c.id), c);
}

// Why a camera is not streaming, in words (wrong password, host unreachable, only UDP…),
// with the technical reason as the tooltip; hidden while it streams.
function showTrouble(p, c) {
  const t = c.state !== "streaming" && c.trouble;
  p.hidden = !t;
  p.textContent = t ? t.message : "";
  p.title = t ? t.detail : "";
}

// A message's link to an event: its clip when it has one, else the event list.
async function pageEvent(id) {
  const e = await api("/api/events/" + encodeURIComponent(id));
  location.replace(e.clip_id ? "#clip/" + e.clip_id : "#events");
}

function route() {
  const [page, arg] = location.hash.replace(/^#/, "").split("/");
  const rest = location.hash.replace(/^#/, "").split("/").slice(1).map(decodeURIComponent);
  const go = { live: pageLive, events: pageEvents, clip: () => pageClip(arg), camera: () => pageCamera(rest[0]), timeline: () => pageTimeline(rest[0], rest[1]),
    "add-camera": () => { show("add-camera"); pageAddCamera(); return Promise.resolve(); },
    system: pageSystem, users: pageUsers, insights: pageInsights, event: () => pageEvent(arg), review: () => pageReview(rest[0]),
  }[page] || pageReview;
  go().catch((e) => console.error(e));
}

function listen() {
  const es = new EventSource("/api/events/stream");
  es.addEventListener("camera", (m) => badge(JSON.parse(m.data)));
  es.addEventListener("review", (m) => onReviewMessage(JSON.parse(m.data)));
  es.addEventListener("start", (m) => {
    const e = JSON.parse(m.data);
    if (!$("page-events").hidden && !$("event-" + e.id)) $("events").prepend(eventItem(e));
    const view = $("view-" + e.camera_id);
    if (e.has_snapshot && view && view.querySelector(".last-picture")) showLastPicture(view, e.camera_id).catch(console.error);
  });
}

async function main() {
  setMe(await api("/api/me"));
  $("who").textContent = me.username + " (" + me.user_type + ")";
  $("nav-users").hidden = me.user_type !== "admin";
  if (me.user_type === "admin") { setupUserForms(); setupTokenForm(); setupProbe(); setupAddCamera(); setupZoneEditor(); }
  setupNotify();
  const { cameras } = await api("/api/cameras");
  for (const c of cameras) {
    $("f-camera").append(el("option", { value: c.id, text: c.name || c.id }));
    $("tl-camera").append(el("option", { value: c.id, text: c.name || c.id }));
    $("in-camera").append(el("option", { value: c.id, text: c.name || c.id }));
  }
  setupTimeline();
  setReviewCameras(cameras);
  setupReview();
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); pageEvents(); });
  for (const f of ["in-days", "in-camera"]) $(f).addEventListener("change", () => pageInsights().catch(console.error));
  $("logout").onclick = async () => { await api("/auth/logout", { method: "POST" }); location.href = "/login"; };
  window.addEventListener("hashchange", route);
  listen();
  route();
}

main().catch((e) => console.error(e));
