// The Review page, where the dashboard opens: review items (a camera's overlapping
// activity) in tabs by severity — alerts, detections, and motion when asked for — each
// with its unreviewed count. An item shows its snapshot; hovering or tapping it plays its
// recording from the item's start (the recorded clip itself, nothing re-encoded); opening
// it marks it reviewed and plays it from its pre-roll on the timeline. "Mark all as
// reviewed" marks what the tab shows, up to now. app.js routes here and feeds it the live
// feed's review messages.
"use strict";

import { $, api, el, jsonBody, onPageChange, show, when } from "./dom.js";

const SEVERITIES = ["alert", "detection", "motion"];
const state = { severity: "alert", cameras: {} };

// The previews playing; stopped when the page changes.
let previews = [];
onPageChange(() => {
  for (const v of previews) { v.pause(); v.removeAttribute("src"); v.load(); }
  previews = [];
});

export function setReviewCameras(cameras) {
  for (const c of cameras) state.cameras[c.id] = c.name || c.id;
}

function duration(item) {
  const ms = (item.end_ms || Date.now()) - item.start_ms;
  const s = Math.max(1, Math.round(ms / 1000));
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
}

// Plays the item's recording from its start in `box` (once fetched, the video stays).
async function preview(item, box) {
  let video = box.querySelector("video");
  if (!video) {
    const detail = await api("/api/review/" + item.id);
    const p = detail.recording.preview;
    if (!p) return;
    video = el("video", { muted: "", playsinline: "", preload: "auto", class: "preview", "data-item": item.id });
    video.muted = true;
    video.src = "/clips/" + p.clip_id + ".mp4#t=" + p.offset_s.toFixed(2);
    box.append(video);
    previews.push(video);
  }
  video.play().catch(() => {});
}

function stopPreview(box) {
  const video = box.querySelector("video");
  if (video) video.pause();
}

async function markReviewed(item, li) {
  await api("/api/review/" + item.id + "/reviewed", { method: "POST" });
  li.classList.add("reviewed");
  refreshCounts().catch(console.error);
}

function itemCard(item) {
  const li = el("li", { id: "review-" + item.id, class: item.reviewed ? "reviewed" : "" });
  const box = el("div", { class: "thumb", tabindex: "0", title: "hover or tap to preview" });
  if (item.snapshot_event_id) box.append(el("img", { src: "/api/events/" + item.snapshot_event_id + "/snapshot.jpg", alt: item.labels.join(", ") }));
  box.addEventListener("mouseenter", () => preview(item, box).catch(console.error));
  box.addEventListener("mouseleave", () => stopPreview(box));
  box.addEventListener("click", () => preview(item, box).catch(console.error));
  const camera = state.cameras[item.camera_id] || item.camera_id;
  const text = el("div", { class: "what" },
    el("strong", { text: (item.labels.join(", ") || item.severity) + " · " + camera }),
    el("div", { text: when(item.start_ms) + " · " + (item.end_ms ? duration(item) : "ongoing, " + duration(item)) + (item.cut ? " · continues in the next item" : "") }));
  const open = el("a", { href: "#timeline/" + encodeURIComponent(item.camera_id) + "/" + item.start_ms, class: "open", text: "Open" });
  open.addEventListener("click", () => { markReviewed(item, li).catch(console.error); });
  const done = el("button", { type: "button", class: "mark", text: "Reviewed" });
  done.addEventListener("click", () => markReviewed(item, li).catch(console.error));
  li.append(box, text, open, done);
  return li;
}

async function refreshCounts() {
  const { unreviewed } = await api("/api/review?limit=1");
  for (const s of SEVERITIES) {
    const n = unreviewed[s] || 0;
    $("count-" + s).textContent = n ? String(n) : "";
  }
  $("tab-motion").hidden = !$("show-motion").checked && state.severity !== "motion";
  return unreviewed;
}

export async function pageReview(severity) {
  show("review");
  if (SEVERITIES.includes(severity)) state.severity = severity;
  for (const s of SEVERITIES) $("tab-" + s).setAttribute("aria-pressed", String(s === state.severity));
  const unreviewed = await refreshCounts();
  const { items } = await api("/api/review?severity=" + state.severity + "&limit=200");
  $("review-items").replaceChildren(...items.map(itemCard));
  const empty = $("review-empty");
  empty.hidden = items.length > 0;
  const motion = unreviewed.motion || 0;
  empty.textContent = "Nothing to review here." + (state.severity !== "motion" && motion ? " " + motion + " motion items are hidden:" : "");
  $("review-show-motion").hidden = !(state.severity !== "motion" && motion);
}

// A review message from the live feed: redraw the open list and the counts.
export function onReviewMessage(notice) {
  if ($("page-review").hidden) return;
  if (notice.item && notice.item.severity === state.severity) pageReview().catch(console.error);
  else refreshCounts().catch(console.error);
}

export function setupReview() {
  for (const s of SEVERITIES) $("tab-" + s).addEventListener("click", () => { location.hash = "#review/" + s; });
  $("show-motion").checked = localStorage.getItem("sentrix.showMotion") === "1";
  $("show-motion").addEventListener("change", () => {
    localStorage.setItem("sentrix.showMotion", $("show-motion").checked ? "1" : "0");
    refreshCounts().catch(console.error);
  });
  $("review-show-motion").addEventListener("click", () => { location.hash = "#review/motion"; });
  $("review-all").addEventListener("click", async () => {
    await api("/api/review/reviewed", Object.assign({ method: "POST" }, jsonBody({ before_ms: Date.now(), severity: state.severity })));
    await pageReview();
  });
}
