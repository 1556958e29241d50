// Cameras from the browser (admins): the add-camera page (a URL and its login, a test
// that shows the camera's figures and picture, then name, recording mode and save; the
// Live page then plays it) and the zone editor on a camera page (draw, move, rename and
// delete zones and masks over a current picture; saved through the API and used by the
// detector from its next frame).
"use strict";

import { $, api, el, jsonBody } from "./dom.js";

// ---- Add a camera ----------------------------------------------------------------------

// The URL typed, with the login given apart: `withPassword` for the probe only (the
// saved camera keeps its password sealed, apart from the URL).
function cameraUrl(withPassword) {
  const url = new URL($("add-url").value.trim());
  const user = $("add-user").value.trim();
  if (user) url.username = user;
  if (withPassword && $("add-password").value) url.password = $("add-password").value;
  return url.toString();
}

// A sub-stream URL with the login's user (its password is the camera's, kept apart).
function withUser(raw) {
  const user = $("add-user").value.trim();
  if (!user) return raw;
  try { const u = new URL(raw); u.username = user; return u.toString(); } catch { return raw; }
}

function say(id, text, bad) {
  $(id).textContent = text;
  $(id).className = "msg" + (bad ? " bad" : "");
}

async function testCamera() {
  $("add-save").disabled = true;
  $("add-picture").hidden = true;
  let url;
  try { url = cameraUrl(true); } catch { return say("add-probe-msg", "That is not a URL.", true); }
  say("add-probe-msg", "Connecting…");
  $("add-test").disabled = true;
  try {
    const r = await api("/api/cameras/probe", Object.assign({ method: "POST" },
      jsonBody({ url, transport: $("add-transport").value })));
    if (!r.ok) return say("add-probe-msg", r.trouble.message, true);
    say("add-probe-msg", [r.codec.toUpperCase(), r.width + "×" + r.height, r.fps + " fps",
      Math.round(r.bitrate_kbps) + " kbit/s", "over " + r.transport.toUpperCase()].join(" · "));
    if (r.picture) { $("add-picture").src = r.picture; $("add-picture").hidden = false; }
    $("add-save").disabled = false;
  } catch (e) {
    say("add-probe-msg", e.message, true);
  } finally {
    $("add-test").disabled = false;
  }
}

// An id from the name: lower case, letters, digits and dashes.
function idFrom(name) {
  return name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
}

async function saveCamera(ev) {
  ev.preventDefault();
  const body = { id: $("add-id").value.trim(), name: $("add-name").value.trim(), url: cameraUrl(false),
    transport: $("add-transport").value };
  if ($("add-password").value) body.password = $("add-password").value;
  if ($("add-sub").value.trim()) body.detect_url = withUser($("add-sub").value.trim());
  if ($("add-mode").value) body.record_mode = $("add-mode").value;
  $("add-save").disabled = true;
  say("add-msg", "Saving…");
  try {
    await api("/api/cameras", Object.assign({ method: "POST" }, jsonBody(body)));
    $("add-form").reset();
    location.hash = "#live";
  } catch (e) {
    say("add-msg", e.message, true);
    $("add-save").disabled = false;
  }
}

export function setupAddCamera() {
  $("live-add").hidden = false;
  $("scan-go").addEventListener("click", () => scan().catch(console.error));
  $("onvif-read").addEventListener("click", () => readProfiles().catch(console.error));
  for (const s of ["onvif-main", "onvif-sub"]) $(s).addEventListener("change", chooseProfiles);
  $("add-test").addEventListener("click", () => testCamera().catch(console.error));
  $("add-form").addEventListener("submit", (ev) => saveCamera(ev).catch(console.error));
  $("add-name").addEventListener("input", () => {
    if (!$("add-id").dataset.edited) $("add-id").value = idFrom($("add-name").value);
  });
  $("add-id").addEventListener("input", () => { $("add-id").dataset.edited = "1"; });
  for (const f of ["add-url", "add-user", "add-password", "add-transport"]) {
    $(f).addEventListener("input", () => { $("add-save").disabled = true; });
  }
}

export function pageAddCamera() {
  $("add-picture").hidden = true;
  $("add-save").disabled = true;
  say("add-probe-msg", "");
  say("add-msg", "");
}

// ---- ONVIF: scan, pick, read the profiles ----------------------------------------------

const onvif = { xaddr: null, profiles: [] };

async function scan() {
  const q = new URLSearchParams({ targets: $("scan-targets").value.trim(), multicast: String($("scan-multicast").checked) });
  say("scan-msg", "Scanning…");
  $("scan-go").disabled = true;
  try {
    const { cameras } = await api("/api/onvif/discover?" + q);
    say("scan-msg", cameras.length ? cameras.length + " found" : "No ONVIF camera answered.", !cameras.length);
    $("scan-list").replaceChildren(...cameras.map((c) => {
      const use = el("button", { type: "button", class: "scan-use", text: c.added_as.length ? "Added as " + c.added_as.join(", ") : "Use" });
      use.disabled = c.added_as.length > 0;
      use.addEventListener("click", () => pick(c));
      return el("li", {}, el("span", { text: [c.name || "camera", c.model, c.address].filter(Boolean).join(" · ") }), use);
    }));
  } catch (e) {
    say("scan-msg", e.message, true);
  } finally {
    $("scan-go").disabled = false;
  }
}

function pick(c) {
  onvif.xaddr = c.xaddrs[0];
  $("onvif-read-row").hidden = false;
  if (c.name && !$("add-name").value) { $("add-name").value = c.name; $("add-name").dispatchEvent(new Event("input")); }
  say("onvif-msg", "Enter its login, then read its profiles.");
}

const profileText = (p) => [p.name, p.codec, p.width && p.width + "×" + p.height, p.fps && p.fps + " fps"].filter(Boolean).join(" · ");

async function readProfiles() {
  say("onvif-msg", "Asking the camera…");
  try {
    const r = await api("/api/onvif/profiles", Object.assign({ method: "POST" },
      jsonBody({ xaddr: onvif.xaddr, username: $("add-user").value.trim(), password: $("add-password").value })));
    if (!r.ok) return say("onvif-msg", r.trouble.message, true);
    const c = r.camera;
    onvif.profiles = c.profiles.filter((p) => p.stream_uri);
    say("onvif-msg", [c.manufacturer, c.model].filter(Boolean).join(" ") + ": " + onvif.profiles.length + " profiles" +
      (c.clock_warning ? ". Warning: " + c.clock_warning : ""), !!c.clock_warning);
    const options = (none) => (none ? [el("option", { value: "", text: "none" })] : []).concat(
      onvif.profiles.map((p, i) => el("option", { value: String(i), text: profileText(p) })));
    $("onvif-main").replaceChildren(...options(false));
    $("onvif-sub").replaceChildren(...options(true));
    // The smallest other profile is the sub-stream a detector wants.
    const bySize = onvif.profiles.map((p, i) => [p.width * p.height || Infinity, i]).sort((a, b) => a[0] - b[0]);
    if (onvif.profiles.length > 1) $("onvif-sub").value = String(bySize[0][1] === 0 ? bySize[1][1] : bySize[0][1]);
    $("onvif-profiles").hidden = false;
    chooseProfiles();
  } catch (e) {
    say("onvif-msg", e.message, true);
  }
}

function chooseProfiles() {
  const main = onvif.profiles[+$("onvif-main").value];
  const sub = $("onvif-sub").value === "" ? null : onvif.profiles[+$("onvif-sub").value];
  if (main) $("add-url").value = main.stream_uri;
  $("add-sub").value = sub && sub !== main ? sub.stream_uri : "";
  $("add-save").disabled = true;
}

// ---- Zone editor -----------------------------------------------------------------------

const GRAB_PX = 12; // how near a corner a press must be to move it
const editor = { camera: null, areas: { zones: [], masks: [] }, drawing: null, dragging: null };

function canvasPoint(ev) {
  const c = $("zone-canvas"), r = c.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)];
}

function draw() {
  const c = $("zone-canvas"), img = $("zone-picture");
  c.width = img.clientWidth;
  c.height = img.clientHeight;
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const shape = (points, fill, stroke, closed) => {
    if (!points.length) return;
    g.beginPath();
    points.forEach(([x, y], i) => (i ? g.lineTo(x * c.width, y * c.height) : g.moveTo(x * c.width, y * c.height)));
    if (closed) { g.closePath(); g.fillStyle = fill; g.fill(); }
    g.strokeStyle = stroke;
    g.lineWidth = 2;
    g.stroke();
    g.fillStyle = stroke;
    for (const [x, y] of points) g.fillRect(x * c.width - 4, y * c.height - 4, 8, 8);
  };
  for (const z of editor.areas.zones) shape(z.points, "rgba(40, 200, 90, .25)", "#2c5", true);
  for (const m of editor.areas.masks) shape(m.points, "rgba(20, 20, 20, .55)", "#bbb", true);
  if (editor.drawing) shape(editor.drawing.points, "", "#fc3", false);
}

function listAreas() {
  const items = [];
  for (const kind of ["zones", "masks"]) {
    editor.areas[kind].forEach((a, i) => {
      const name = el("input", { class: "zone-name", value: a.name, "aria-label": "name" });
      name.addEventListener("input", () => { a.name = name.value; });
      const li = el("li", { "data-kind": kind }, el("span", { class: "badge", text: kind === "zones" ? "zone" : "mask" }), name);
      if (kind === "zones") {
        const labels = el("input", { class: "zone-labels", value: (a.labels || []).join(", "),
          placeholder: "all labels", "aria-label": "labels" });
        labels.addEventListener("input", () => { a.labels = labels.value.split(",").map((s) => s.trim()).filter(Boolean); });
        li.append(labels);
      }
      const del = el("button", { type: "button", class: "zone-delete", text: "Delete" });
      del.addEventListener("click", () => { editor.areas[kind].splice(i, 1); listAreas(); draw(); });
      li.append(del);
      items.push(li);
    });
  }
  $("zone-list").replaceChildren(...items);
}

function nearestCorner(p) {
  const c = $("zone-canvas");
  let best = null;
  for (const kind of ["zones", "masks"]) {
    for (const a of editor.areas[kind]) {
      a.points.forEach(([x, y], i) => {
        const d = Math.hypot((x - p[0]) * c.width, (y - p[1]) * c.height);
        if (d <= GRAB_PX && (!best || d < best.d)) best = { area: a, i, d };
      });
    }
  }
  return best;
}

function onPress(ev) {
  const p = canvasPoint(ev);
  if (editor.drawing) { editor.drawing.points.push(p); draw(); return; }
  editor.dragging = nearestCorner(p);
  if (editor.dragging) $("zone-canvas").setPointerCapture(ev.pointerId);
}

function onMove(ev) {
  if (!editor.dragging) return;
  editor.dragging.area.points[editor.dragging.i] = canvasPoint(ev);
  draw();
}

function finishPolygon() {
  const d = editor.drawing;
  editor.drawing = null;
  $("zone-finish").disabled = true;
  if (!d || d.points.length < 3) { say("zone-msg", "A zone needs at least 3 corners.", true); draw(); return; }
  const kind = $("zone-kind").value;
  const n = editor.areas[kind].length + 1;
  editor.areas[kind].push({ name: (kind === "zones" ? "zone " : "mask ") + n, points: d.points, labels: [] });
  say("zone-msg", "");
  listAreas();
  draw();
}

async function saveAreas() {
  const round = (a) => Object.assign({}, a, { points: a.points.map(([x, y]) => [+x.toFixed(4), +y.toFixed(4)]) });
  const body = { zones: editor.areas.zones.map(round), masks: editor.areas.masks.map((m) => ({ name: m.name, points: round(m).points })) };
  try {
    const r = await api("/api/cameras/" + encodeURIComponent(editor.camera) + "/zones", Object.assign({ method: "PUT" }, jsonBody(body)));
    say("zone-msg", r.message || "Saved.");
  } catch (e) {
    say("zone-msg", e.message, true);
  }
}

export function setupZoneEditor() {
  $("camera-zones").addEventListener("click", () => {
    const open = $("zones-editor").hidden;
    $("zones-editor").hidden = !open;
    if (open) { $("zone-picture").src = "/api/cameras/" + encodeURIComponent(editor.camera) + "/snapshot.jpg?t=" + Date.now(); }
  });
  $("zone-picture").addEventListener("load", draw);
  window.addEventListener("resize", () => { if (!$("zones-editor").hidden) draw(); });
  $("zone-new").addEventListener("click", () => {
    editor.drawing = { points: [] };
    $("zone-finish").disabled = false;
    say("zone-msg", "Click the corners on the picture, then Finish.");
  });
  $("zone-finish").addEventListener("click", finishPolygon);
  $("zone-save").addEventListener("click", () => saveAreas().catch(console.error));
  const c = $("zone-canvas");
  c.addEventListener("pointerdown", onPress);
  c.addEventListener("pointermove", onMove);
  c.addEventListener("pointerup", () => { editor.dragging = null; });
}

// The camera page's editor for camera `c` (admins): closed until asked for.
export function showZoneEditor(c, isAdmin) {
  $("camera-zones").hidden = !(isAdmin && c && !c.alarm_only);
  $("zones-editor").hidden = true;
  if (!c) return;
  editor.camera = c.id;
  editor.areas = { zones: structuredClone(c.zones || []), masks: structuredClone(c.masks || []) };
  editor.drawing = null;
  listAreas();
}
