// The timeline: a day of one camera's recorded spans, gaps and events on a zoomable bar,
// and a player that plays recorded time through Media Source Extensions.
"use strict";

import { $, api, el, labelColour, onPageChange, show, when } from "./dom.js";

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

export function setupTimeline() {
  // The state hangs on the bar for the browser tests to read; no other module uses it.
  $("tl-bar").timeline = tl;
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
export async function pageTimeline(camera, at) {
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

// Leaving the timeline stops its player.
onPageChange((page) => { if (page !== "timeline" && tl.player) tl.player.stop(); });
