"use strict";
// The login page: a password grant; a remembered refresh token skips the form.
(() => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const button = form.querySelector("button[type=submit]");

  function destination() {
    const next = new URLSearchParams(location.search).get("next") || "/remote";
    // only a path on this hub: never an address elsewhere
    return next.startsWith("/") && !next.startsWith("//") ? next : "/remote";
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
