"use strict";
// The login page: a password grant; a remembered refresh token skips the form.
(() => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const button = form.querySelector("button[type=submit]");

  // Where to go once signed in: `next` as the browser itself resolves it, kept
  // only if that is on this hub. A check of the text alone misses what the URL
  // parser does ("/\\host" and "/<tab>/host" are both "//host", another origin).
  // The whole resolved address is followed, never its path alone: "/.//host"
  // resolves here with the path "//host", which as a link is another host again.
  function destination() {
    const next = new URLSearchParams(location.search).get("next");
    if (!next) return "/remote";
    let url;
    try { url = new URL(next, location.origin); } catch { return "/remote"; }
    if (url.origin !== location.origin || url.pathname.startsWith("//")) return "/remote";
    return url.href;
  }

  function show(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) { show("Enter your account name and password."); return; }
    button.disabled = true;
    button.textContent = "Signing in…";
    const problem = await Legato.signIn(username, password).catch(() => "The hub cannot be reached.");
    button.disabled = false;
    button.textContent = "Sign in";
    if (problem) { show(problem); form.password.select(); return; }
    location.replace(destination());
  });

  // Signed in before (a refresh token is kept): go straight back.
  if (Legato.load()) {
    Legato.refresh().then((t) => { if (t) location.replace(destination()); });
  }
  form.username.focus();
})();
