// The dashboard: live tiles (players in live.js) and one camera's full view, the event list, the timeline with its player, the clip
// player, system and users pages; insights, notifications and tokens live in insights.js.
// No framework and no inline script (the CSP forbids it); state lives in the URL hash.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (opts.method && opts.method !== "GET" && me) headers["X-CSRF-Token"] = me.csrf_token || "";
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts, { headers }));
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || r.statusText);
  return r.json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const when = (ms) => new Date(ms).toLocaleString();

function show(page) {
  if (page !== "timeline" && tl.player) tl.player.stop();
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.id === "nav-" + page);
  stopPlayers();
}

// The live players on screen; stopped when the page changes.
let players = [];

function stopPlayers() {
  for (const p of players) p.stop();
  players = [];
}

async function pageLive() {
  show("live");
  const grid = $("grid");
  const { cameras } = await api("/api/cameras");
  grid.replaceChildren(...cameras.map((c) => {
    const view = el("div", { class: "tile-view", id: "view-" + c.id, "data-camera": c.id });
    return el("div", { class: "tile", id: "tile-" + c.id }, view,
      el("div", { class: "bar" }, el("a", { href: "#camera/" + encodeURIComponent(c.id), text: c.name || c.id }),
        el("span", { class: "badge", id: "badge-" + c.id, text: c.enabled ? "…" : "disabled" })));
  }));
  for (const c of cameras) {
    if (!c.enabled) continue;
    badge(c);
    players.push(new LivePlayer($("view-" + c.id), c.id, null));
  }
}

// One camera, large, from its main stream; the button makes it full screen.
async function pageCamera(id) {
  show("camera");
  const { cameras } = await api("/api/cameras");
  const c = cameras.find((x) => x.id === id);
  $("camera-title").textContent = c ? c.name || c.id : id;
  const view = $("camera-view");
  view.dataset.camera = id;
  players.push(new LivePlayer(view, id, "main"));
  $("camera-full").onclick = () => view.requestFullscreen().catch(() => {});
}

function eventItem(e) {
  const li = el("li", { id: "event-" + e.id, class: e.acknowledged ? "acknowledged" : "" });
  li.append(e.has_snapshot ? el("img", { src: "/api/events/" + e.id + "/snapshot.jpg", alt: e.label }) : el("span"));
  const text = el("div", {}, el("strong", { text: e.label + " " + Math.round(e.max_score * 100) + "%" }),
    el("div", { text: e.camera_id + " · " + when(e.start_ms) + (e.end_ms ? "" : " · ongoing") }));
  li.append(text);
  if (e.clip_id) li.append(el("a", { href: "#clip/" + e.clip_id, class: "clip-link", text: "Play clip" }));
  if (e.clip_offsite && e.clip_offsite !== "local") li.append(offsiteBadge(e.clip_offsite));
  else li.append(el("a", { href: "#timeline/" + encodeURIComponent(e.camera_id) + "/" + e.start_ms, class: "timeline-link", text: "Play" }));
  if (me && me.user_type === "admin") li.append(keepButton(e));
  if (me && me.user_type === "admin" && !e.acknowledged) {
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
  $("clip-meta").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
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
    ["Recordings", gb(h.storage.used_bytes)], ["Disk free", gb(h.storage.free_bytes) + " of " + gb(h.storage.total_bytes)]];
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

// ---- Timeline: a day of one camera's recorded spans, gaps and events, and a player ----

const DAY_MS = 86400000;
// Recorded time is fetched in windows of this length and appended to a Media Source.
const WINDOW_MS = 30000;
// The bar shows `viewLen` ms from `view0`: a day, or a zoomed part of it.
const ZOOMS = [[86400000, "24 h", 3 * 3600000], [21600000, "6 h", 3600000], [3600000, "1 h", 600000],
  [600000, "10 min", 60000]];
const tl = { camera: null, view0: 0, viewLen: DAY_MS, data: null, player: null, dragging: false };

// Plays recorded time through Media Source Extensions: windows of it come from
// /api/recordings as MP4s (one per window, never across a gap) and are appended at their
// wall-clock place (timestampOffset), so playback runs across segments and windows without
// a stall, and the wall time of the frame on screen is base + currentTime. At a gap it
// jumps to the next recorded span.
class TimelinePlayer {
  constructor(video, onWall, onMessage) {
    this.video = video;
    this.onWall = onWall;
    this.onMessage = onMessage;
    this.session = 0;
    video.addEventListener("timeupdate", () => this.report());
    video.addEventListener("waiting", () => this.jumpGap());
  }

  wallMs() {
    return this.base === null || this.base === undefined ? null : this.base + this.video.currentTime * 1000;
  }

  report() {
    const ms = this.wallMs();
    if (ms !== null) this.onWall(ms);
  }

  // Starts playback at wall time `wallMs` of `camera`, whose recorded `spans` are known.
  // `more(fromMs)` fetches the timeline on from there, for recording that goes on.
  async play(camera, wallMs, spans, more) {
    const session = ++this.session;
    Object.assign(this, { camera, spans, more, base: null, next: wallMs, sb: null, codec: null, busy: false, asked: 0,
      started: false });
    this.ms = new MediaSource();
    this.video.src = URL.createObjectURL(this.ms);
    await new Promise((ok) => this.ms.addEventListener("sourceopen", ok, { once: true }));
    if (session !== this.session) return;
    const appended = await this.appendNext(session);
    if (session !== this.session) return;
    if (!appended) throw new Error("nothing recorded from there on");
    this.video.currentTime = Math.max(0, (wallMs - this.base) / 1000);
    this.report();
    // From here the picture and the readout are this session's (tests wait for it).
    this.started = true;
    this.video.play().catch(() => {});
    this.pump(session);
  }

  // The window to fetch next: from `next` to the end of its span, at most WINDOW_MS.
  nextWindow() {
    const span = this.spans.find((s) => s.end_ms > this.next);
    if (!span) return null;
    const from = Math.round(Math.max(this.next, span.start_ms));
    return { from, to: Math.round(Math.min(from + WINDOW_MS, span.end_ms)), span };
  }

  async appendNext(session) {
    const w = this.nextWindow();
    if (!w) return false;
    const url = "/api/recordings/" + encodeURIComponent(this.camera) + ".mp4?from=" + w.from + "&to=" + w.to;
    const r = await fetch(url, { credentials: "same-origin" });
    if (session !== this.session) return false;
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || r.statusText);
    const start = Number(r.headers.get("X-Sentrix-Start-Ms"));
    const codec = r.headers.get("X-Sentrix-Codec") || "avc1.42e01e";
    const data = await r.arrayBuffer();
    if (session !== this.session) return false;
    if (this.base === null) this.base = start;
    const type = 'video/mp4; codecs="' + codec + '"';
    if (!this.sb) {
      this.sb = this.ms.addSourceBuffer(type);
      this.codec = codec;
    } else if (codec !== this.codec && this.sb.changeType) {
      this.sb.changeType(type);
      this.codec = codec;
    }
    this.sb.timestampOffset = (start - this.base) / 1000;
    await this.appendBuffer(data);
    // A new session may have started while the browser appended: `next` is its own.
    if (session !== this.session) return false;
    this.next = w.to >= w.span.end_ms ? w.span.end_ms + 1 : w.to;
    return true;
  }

  appendBuffer(data) {
    return new Promise((ok, fail) => {
      const done = () => { this.sb.removeEventListener("error", bad); ok(); };
      const bad = () => { this.sb.removeEventListener("updateend", done); fail(new Error("the browser refused the video")); };
      this.sb.addEventListener("updateend", done, { once: true });
      this.sb.addEventListener("error", bad, { once: true });
      this.sb.appendBuffer(data);
    });
  }

  // Seconds buffered ahead of the playhead.
  ahead() {
    const b = this.video.buffered, t = this.video.currentTime;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.1 && b.end(i) > t) return b.end(i) - t;
    return 0;
  }

  // Keeps 15 s buffered ahead and at most a minute behind, until the session changes.
  async pump(session) {
    while (session === this.session) {
      try {
        if (!this.busy && this.ahead() < 15 && this.nextWindow()) {
          this.busy = true;
          await this.appendNext(session);
          this.busy = false;
        } else if (!this.nextWindow() && this.more && Date.now() - this.asked > 5000) {
          this.asked = Date.now();
          const t = await this.more(this.next);
          if (session === this.session) this.spans = t.spans;
        } else if (!this.sb.updating && this.video.currentTime > 90) {
          this.sb.remove(0, this.video.currentTime - 60);
        }
      } catch (e) {
        if (session !== this.session) return;
        this.busy = false;
        this.onMessage(e.message, true);
      }
      if (session !== this.session) return;
      this.jumpGap();
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }

  // At the end of a buffered range with another one after it (a gap in the recording):
  // jumps to it.
  jumpGap() {
    const b = this.video.buffered, t = this.video.currentTime;
    if (this.ahead() > 0.3) return;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) > t) { this.video.currentTime = b.start(i) + 0.01; return; }
    }
  }

  // Ends the session: the picture stops and no longer reports a wall time.
  stop() {
    this.session++;
    this.base = null;
    this.started = false;
    this.video.pause();
  }
}

// A label's colour: the same hue for the same label everywhere.
function labelColour(label) {
  let h = 0;
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) % 360;
  return "hsl(" + h + ", 75%, 55%)";
}

const pct = (ms) => ((ms - tl.view0) / tl.viewLen * 100).toFixed(4) + "%";
const widthPct = (ms) => (Math.max(ms, 0) / tl.viewLen * 100).toFixed(4) + "%";

function localDay0(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function dateInput(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
}

function timeInput(ms) {
  return new Date(ms).toTimeString().slice(0, 8);
}

function timelineMessage(text, bad) {
  $("tl-msg").textContent = text;
  $("tl-msg").className = "msg" + (bad ? " bad" : "");
}

function renderTimeline() {
  const t = tl.data;
  $("tl-spans").replaceChildren(...t.spans.map((s) => {
    const d = el("div", { class: "tl-span" + (s.kind === "event" ? " event-clip" : ""), title: when(s.start_ms) + " – " + when(s.end_ms) });
    d.style.left = pct(s.start_ms);
    d.style.width = widthPct(s.end_ms - s.start_ms);
    return d;
  }));
  const labels = [...new Set(t.events.map((e) => e.label))].sort();
  const keep = $("tl-label").value;
  $("tl-label").replaceChildren(el("option", { value: "", text: "all labels" }),
    ...labels.map((l) => el("option", { value: l, text: l })));
  if (labels.includes(keep)) $("tl-label").value = keep;
  $("tl-markers").replaceChildren(...t.events.map((e) => {
    const m = el("div", { class: "tl-marker", "data-label": e.label, "data-event": String(e.id),
      title: e.label + " " + Math.round(e.max_score * 100) + "% · " + when(e.start_ms) });
    m.style.left = pct(e.start_ms);
    m.style.width = widthPct((e.end_ms || e.start_ms) - e.start_ms);
    m.style.background = labelColour(e.label);
    m.addEventListener("pointerdown", (ev) => ev.stopPropagation());
    m.addEventListener("click", (ev) => { ev.stopPropagation(); playAt(e.start_ms - (t.pre_roll_ms || 0)); });
    return m;
  }));
  filterMarkers();
  // Tick labels every `step`, doubled until they fit the bar (about 56 px each).
  let step = (ZOOMS.find((z) => z[0] === tl.viewLen) || ZOOMS[0])[2];
  const fit = Math.max(2, Math.floor($("tl-bar").clientWidth / 56));
  while (tl.viewLen / step > fit) step *= 2;
  const ticks = [];
  for (let t = Math.ceil(tl.view0 / step) * step; t < tl.view0 + tl.viewLen; t += step) ticks.push(t);
  $("tl-hours").replaceChildren(...ticks.map((t) => {
    const s = el("span", { text: new Date(t).toTimeString().slice(0, 5) });
    s.style.left = pct(t);
    return s;
  }));
}

function filterMarkers() {
  const only = $("tl-label").value;
  for (const m of $("tl-markers").children) m.classList.toggle("hidden-label", !!only && m.dataset.label !== only);
}

async function fetchTimeline(from, to) {
  return api("/api/timeline?camera=" + encodeURIComponent(tl.camera) + "&from=" + Math.round(from) + "&to=" + Math.round(to));
}

async function loadTimeline() {
  tl.data = await fetchTimeline(tl.view0, tl.view0 + tl.viewLen);
  $("tl-date").value = dateInput(tl.view0);
  $("tl-zoom").value = String(tl.viewLen);
  renderTimeline();
}

// Where a zoom centres: the frame playing, else the time last picked on the bar, else
// the newest recorded time in view, else now.
function zoomCentre() {
  const playing = tl.player.wallMs();
  if (playing !== null) return playing;
  const picked = Number($("tl-bar").dataset.playMs);
  if (picked) return picked;
  const spans = tl.data ? tl.data.spans : [];
  return spans.length ? spans[spans.length - 1].end_ms : Date.now();
}

// Zooms to `len` ms around `centre`.
function zoomTo(len, centre) {
  tl.viewLen = len;
  tl.view0 = len === DAY_MS ? localDay0(centre) : Math.round(centre - len / 2);
  return loadTimeline();
}

function showWall(ms) {
  $("tl-clock").textContent = new Date(ms).toLocaleString();
  $("tl-clock").dataset.wallMs = String(Math.round(ms));
  const c = $("tl-cursor");
  c.hidden = ms < tl.view0 || ms >= tl.view0 + tl.viewLen;
  c.style.left = pct(ms);
}

// Plays from wall time `ms` (the next recorded span when nothing was recorded then).
async function playAt(ms) {
  ms = Math.round(ms);
  // What played before stops now, not once the new time's timeline has arrived.
  tl.player.stop();
  $("tl-bar").dataset.playMs = String(Math.round(ms));
  const spans = (await fetchTimeline(ms - 60000, ms + 6 * 3600000)).spans;
  const span = spans.find((s) => s.end_ms > ms);
  if (!span) { timelineMessage("Nothing recorded after " + when(ms) + ".", true); return; }
  const start = Math.max(ms, span.start_ms);
  timelineMessage(start > ms ? "Nothing recorded at " + when(ms) + "; playing from " + when(start) + "." : "");
  $("tl-from").value = timeInput(start);
  $("tl-to").value = timeInput(Math.min(start + 5 * 60000, span.end_ms));
  try {
    await tl.player.play(tl.camera, start, spans, (from) => fetchTimeline(from, from + 6 * 3600000));
  } catch (e) { timelineMessage(e.message, true); }
}

function barTime(ev) {
  const r = $("tl-bar").getBoundingClientRect();
  const x = Math.min(Math.max(ev.clientX - r.left, 0), r.width - 1);
  return tl.view0 + x / r.width * tl.viewLen;
}

function setupTimeline() {
  tl.player = new TimelinePlayer($("tl-video"), showWall, timelineMessage);
  const bar = $("tl-bar");
  bar.addEventListener("pointerdown", (ev) => { tl.dragging = true; bar.setPointerCapture(ev.pointerId); showWall(barTime(ev)); });
  bar.addEventListener("pointermove", (ev) => { if (tl.dragging) showWall(barTime(ev)); });
  bar.addEventListener("pointerup", (ev) => { if (!tl.dragging) return; tl.dragging = false; playAt(barTime(ev)); });
  $("tl-camera").addEventListener("change", () => { location.hash = "#timeline/" + encodeURIComponent($("tl-camera").value); });
  const fail = (e) => timelineMessage(e.message, true);
  // Back or forward by the view's length (a day at 24 h).
  const page = (dir) => {
    tl.view0 = tl.viewLen === DAY_MS ? localDay0(tl.view0 + dir * DAY_MS + DAY_MS / 2) : tl.view0 + dir * tl.viewLen;
    loadTimeline().catch(fail);
  };
  $("tl-prev").onclick = () => page(-1);
  $("tl-next").onclick = () => page(1);
  $("tl-date").addEventListener("change", () => {
    if (!$("tl-date").value) return;
    tl.viewLen = DAY_MS;
    tl.view0 = new Date($("tl-date").value + "T00:00:00").getTime();
    loadTimeline().catch(fail);
  });
  $("tl-zoom").replaceChildren(...ZOOMS.map(([len, name]) => el("option", { value: String(len), text: name })));
  $("tl-zoom").addEventListener("change", () => zoomTo(Number($("tl-zoom").value), zoomCentre()).catch(fail));
  $("tl-label").addEventListener("change", filterMarkers);
  window.addEventListener("resize", () => { if (tl.data && !$("page-timeline").hidden) renderTimeline(); });
  $("tl-export").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const day = dateInput(tl.player.wallMs() !== null ? tl.player.wallMs() : tl.view0);
    const at = (v) => new Date(day + "T" + (v.length === 5 ? v + ":00" : v)).getTime();
    const from = at($("tl-from").value), to = at($("tl-to").value);
    if (!(to > from)) { timelineMessage("The export must end after it starts.", true); return; }
    const link = $("tl-export-link");
    link.href = "/api/recordings/" + encodeURIComponent(tl.camera) + ".mp4?from=" + from + "&to=" + to + "&download=1";
    link.hidden = false;
    link.click();
    timelineMessage("Exporting " + when(from) + " – " + when(to) + ".");
  });
}

// #timeline[/camera[/ms]]: the day of `ms` (today), playing from `ms` when given.
async function pageTimeline(camera, at) {
  show("timeline");
  const cameras = [...$("tl-camera").options].map((o) => o.value);
  tl.camera = camera && cameras.includes(camera) ? camera : tl.camera || cameras[0];
  if (!tl.camera) { timelineMessage("No cameras.", true); return; }
  $("tl-camera").value = tl.camera;
  const ms = Number(at) || null;
  tl.viewLen = ms ? 3600000 : DAY_MS;
  tl.view0 = ms ? ms - tl.viewLen / 2 : localDay0(Date.now());
  await loadTimeline();
  if (ms) await playAt(ms - (tl.data.pre_roll_ms || 0));
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

function usersMessage(text, bad) {
  const m = $("users-msg");
  m.textContent = text;
  m.className = "msg" + (bad ? " bad" : "");
}

const jsonBody = (value) => ({ headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });

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
  if (!b) return;
  const state = c.problem ? "failed" : c.state;
  b.textContent = state;
  b.className = "badge " + state;
  b.title = c.problem || "";
}

// A message's link to an event: its clip when it has one, else the event list.
async function pageEvent(id) {
  const e = await api("/api/events/" + encodeURIComponent(id));
  location.replace(e.clip_id ? "#clip/" + e.clip_id : "#events");
}

function route() {
  const [page, arg] = location.hash.replace(/^#/, "").split("/");
  const rest = location.hash.replace(/^#/, "").split("/").slice(1).map(decodeURIComponent);
  const go = { events: pageEvents, clip: () => pageClip(arg), camera: () => pageCamera(rest[0]), timeline: () => pageTimeline(rest[0], rest[1]),
    system: pageSystem, users: pageUsers, insights: pageInsights, event: () => pageEvent(arg) }[page] || pageLive;
  go().catch((e) => console.error(e));
}

function listen() {
  const es = new EventSource("/api/events/stream");
  es.addEventListener("camera", (m) => badge(JSON.parse(m.data)));
  es.addEventListener("start", (m) => {
    const e = JSON.parse(m.data);
    if (!$("page-events").hidden && !$("event-" + e.id)) $("events").prepend(eventItem(e));
  });
}

async function main() {
  me = await api("/api/me");
  $("who").textContent = me.username + " (" + me.user_type + ")";
  $("nav-users").hidden = me.user_type !== "admin";
  if (me.user_type === "admin") { setupUserForms(); setupTokenForm(); }
  setupNotify();
  const { cameras } = await api("/api/cameras");
  for (const c of cameras) {
    $("f-camera").append(el("option", { value: c.id, text: c.name || c.id }));
    $("tl-camera").append(el("option", { value: c.id, text: c.name || c.id }));
    $("in-camera").append(el("option", { value: c.id, text: c.name || c.id }));
  }
  setupTimeline();
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); pageEvents(); });
  for (const f of ["in-days", "in-camera"]) $(f).addEventListener("change", () => pageInsights().catch(console.error));
  $("logout").onclick = async () => { await api("/auth/logout", { method: "POST" }); location.href = "/login"; };
  window.addEventListener("hashchange", route);
  listen();
  route();
}

main().catch((e) => console.error(e));
