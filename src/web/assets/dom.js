// The dashboard's shared helpers, imported by every page module: element lookup and
// construction, the signed-in user, API calls with the CSRF token, page switching with
// hooks for what must stop when the page changes (live players, the timeline player).
"use strict";

export const $ = (id) => document.getElementById(id);

// The signed-in user (/api/me), set once by app.js before any page is shown.
export let me = null;
export function setMe(user) { me = user; }
// Operators and admins acknowledge, keep, trigger and switch the armed mode.
export const operates = () => !!me && (me.user_type === "admin" || me.user_type === "operator");

export async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (opts.method && opts.method !== "GET" && me) headers["X-CSRF-Token"] = me.csrf_token || "";
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts, { headers }));
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || r.statusText);
  return r.json();
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

export const when = (ms) => new Date(ms).toLocaleString();

export const jsonBody = (value) => ({ headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });

// What runs when the page changes (each gets the new page's name).
const pageChangeHooks = [];
export function onPageChange(hook) { pageChangeHooks.push(hook); }

export function show(page) {
  for (const hook of pageChangeHooks) hook(page);
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.id === "nav-" + page);
}

// The message line of the users page (users and API tokens).
export function usersMessage(text, bad) {
  const m = $("users-msg");
  m.textContent = text;
  m.className = "msg" + (bad ? " bad" : "");
}

// A label's colour: the same hue for the same label everywhere (timeline, charts).
export function labelColour(label) {
  let h = 0;
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) % 360;
  return "hsl(" + h + ", 75%, 55%)";
}
