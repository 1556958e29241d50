// Logs in with HTTP Basic once; the server answers with a session cookie, so the
// password is not sent again.
"use strict";
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = document.getElementById("user").value;
  const pass = document.getElementById("password").value;
  const err = document.getElementById("error");
  err.textContent = "";
  const bytes = new TextEncoder().encode(user + ":" + pass);
  const basic = btoa(String.fromCharCode(...bytes));
  const r = await fetch("/auth/verify", {
    method: "POST",
    headers: { Authorization: "Basic " + basic },
    credentials: "same-origin",
  });
  if (r.ok) {
    location.href = "/";
  } else if (r.status === 429) {
    err.textContent = "Too many attempts. Try again in " + (r.headers.get("Retry-After") || "a few") + " s.";
  } else {
    err.textContent = "Wrong user name or password.";
  }
});
