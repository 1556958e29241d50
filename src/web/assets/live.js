// Live view players: the camera's own H.264 (or H.265), remuxed by the box into fragmented
// MP4, over a WebSocket (/api/cameras/ID/live.mp4) into the browser's Media Source. The box
// decodes and encodes nothing for it. Where the browser cannot play the codec (H.265 in
// most), the tile falls back to MJPEG of the decoded sub-stream. The detector's boxes come
// on the same socket and are drawn over the video in SVG, never into the picture.
"use strict";

// Keep the playhead within this much of the newest picture (the bound is 1 s; a
// little margin, as the distance is checked once per picture).
const LIVE_MAX_BEHIND_S = 0.9;
// Trailing by more than this, play 10 % fast until back within 2 x LIVE_EDGE_S.
const LIVE_DRIFT_S = 0.4;
// Where a jump to the live edge lands, behind the newest picture.
const LIVE_EDGE_S = 0.15;
// Seconds of video kept behind the playhead.
const LIVE_KEEP_S = 20;
export const SVG_NS = "http://www.w3.org/2000/svg";

export class LivePlayer {
  // `tile`: the element to fill; `stream`: "main", "sub" or null (the box's default).
  constructor(tile, camera, stream) {
    Object.assign(this, { tile, camera, stream, stopped: false, retryMs: 500, streams: 0 });
    this.video = document.createElement("video");
    Object.assign(this.video, { muted: true, autoplay: true, playsInline: true });
    this.video.className = "live-video";
    this.overlay = document.createElementNS(SVG_NS, "svg");
    this.overlay.setAttribute("class", "live-boxes");
    this.overlay.setAttribute("viewBox", "0 0 1 1");
    this.overlay.setAttribute("preserveAspectRatio", "none");
    this.info = document.createElement("span");
    this.info.className = "live-info";
    this.frame = document.createElement("div");
    this.frame.className = "live-frame";
    this.frame.append(this.video, this.overlay);
    tile.replaceChildren(this.frame, this.info);
    this.setMode("connecting");
    this.timer = setInterval(() => this.catchUp(), 250);
    this.connect();
  }

  setMode(mode, text) {
    this.tile.dataset.mode = mode;
    this.info.textContent = text || mode;
  }

  connect() {
    if (this.stopped) return;
    const q = this.stream ? "?stream=" + this.stream : "";
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/cameras/" + encodeURIComponent(this.camera) + "/live.mp4" + q);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (m) => (typeof m.data === "string" ? this.onText(JSON.parse(m.data)) : this.onPiece(m.data));
    ws.onopen = () => { this.retryMs = 500; };
    ws.onclose = () => this.reconnect(ws);
    this.ws = ws;
  }

  // The socket ended (camera restarted, box reloaded, network): try again, backing off to
  // 5 s, without touching the page.
  reconnect(ws) {
    if (this.stopped || ws !== this.ws || this.mode === "fallback") return;
    this.setMode("reconnecting");
    setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }

  onText(msg) {
    if (msg.type === "stream") this.newStream(msg);
    else if (msg.type === "boxes") this.drawBoxes(msg.boxes);
  }

  // A stream starts (first message, a camera reconnect or a resolution change): a fresh
  // Media Source for it, or the MJPEG fallback when the browser cannot decode it.
  newStream(about) {
    this.streams += 1;
    this.tile.dataset.streams = String(this.streams);
    this.frame.style.aspectRatio = about.width + " / " + about.height;
    if (!window.MediaSource || !MediaSource.isTypeSupported(about.mime)) {
      this.fallback(about);
      return;
    }
    this.teardown();
    this.queue = [];
    this.sb = null;
    this.ms = new MediaSource();
    this.ms.addEventListener("sourceopen", () => {
      this.sb = this.ms.addSourceBuffer(about.mime);
      this.sb.mode = "segments";
      this.sb.addEventListener("updateend", () => this.feed());
      this.feed();
    }, { once: true });
    this.video.src = URL.createObjectURL(this.ms);
    this.tile.dataset.width = about.width;
    this.tile.dataset.height = about.height;
    this.setMode("live", about.width + "×" + about.height + " · live");
  }

  onPiece(data) {
    if (!this.queue) return;
    this.queue.push(data);
    this.feed();
  }

  // Appends what is queued, one piece at a time; trims what is long played.
  feed() {
    const sb = this.sb;
    if (!sb || sb.updating || this.ms.readyState !== "open") return;
    const b = this.video.buffered;
    if (b.length && this.video.currentTime - b.start(0) > LIVE_KEEP_S + 10) {
      sb.remove(0, this.video.currentTime - LIVE_KEEP_S);
      return;
    }
    const next = this.queue.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
    } catch (e) {
      // A full buffer or a closed source: start this stream again from a keyframe.
      this.ws.close();
    }
    this.catchUp();
  }

  // The live edge: play from the newest picture, and jump back to it whenever the
  // playhead trails it by more than LIVE_MAX_BEHIND_S (a stall, a background tab); a
  // smaller drift is caught up by playing slightly fast.
  catchUp() {
    const v = this.video, b = v.buffered;
    if (!b.length || this.mode === "fallback") return;
    const end = b.end(b.length - 1);
    const behind = end - v.currentTime;
    if (behind > LIVE_MAX_BEHIND_S || v.currentTime < b.start(b.length - 1)) {
      v.currentTime = Math.max(b.start(b.length - 1), end - LIVE_EDGE_S);
    } else if (behind > LIVE_DRIFT_S) {
      v.playbackRate = 1.1; // creep back towards the edge, no visible jump
    } else if (behind < LIVE_EDGE_S * 2) {
      v.playbackRate = 1;
    }
    if (v.paused) v.play().catch(() => {});
  }

  fallback(about) {
    this.teardown();
    this.stopped = true;
    if (this.ws) this.ws.close();
    const img = document.createElement("img");
    img.className = "live-video";
    img.alt = this.camera;
    img.src = "/api/cameras/" + encodeURIComponent(this.camera) + "/live.mjpeg";
    this.frame.replaceChild(img, this.video);
    this.tile.dataset.width = about.width;
    this.tile.dataset.height = about.height;
    this.setMode("fallback", about.width + "×" + about.height + " · fallback (MJPEG, " + about.codec.split(".")[0] + " not playable here)");
  }

  get mode() {
    return this.tile.dataset.mode;
  }

  drawBoxes(boxes) {
    this.overlay.replaceChildren(...boxes.map(([x1, y1, x2, y2]) => {
      const r = document.createElementNS(SVG_NS, "rect");
      r.setAttribute("x", x1);
      r.setAttribute("y", y1);
      r.setAttribute("width", Math.max(0, x2 - x1));
      r.setAttribute("height", Math.max(0, y2 - y1));
      return r;
    }));
  }

  teardown() {
    if (this.video.src) {
      URL.revokeObjectURL(this.video.src);
      this.video.removeAttribute("src");
      this.video.load();
    }
    this.ms = null;
    this.sb = null;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.ws) this.ws.close();
    this.teardown();
    const img = this.frame.querySelector("img");
    if (img) img.removeAttribute("src"); // ends the MJPEG request
  }
}
