"use strict";
// Legato's browser client: the account's tokens, the JSON API (refreshing the
// access token when it expires) and the live WebSocket with reconnection.
// Plain script, no build step; everything else uses the global `Legato`.
const Legato = (() => {
  const KEY = "legato.tokens";
  const COOKIE = "legato_token";

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch { return null; }
  }

  function setCookie(value, maxAgeS) {
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `${COOKIE}=${value}; Path=/; Max-Age=${maxAgeS}; SameSite=Strict${secure}`;
  }

  function save(granted) {
    const tokens = {
      access_token: granted.access_token,
      refresh_token: granted.refresh_token || (load() || {}).refresh_token,
      // a little early, so a request never leaves with a token about to lapse
      expires_at: Date.now() + (granted.expires_in - 30) * 1000,
    };
    localStorage.setItem(KEY, JSON.stringify(tokens));
    setCookie(tokens.access_token, Math.max(0, granted.expires_in - 30));
    return tokens;
  }

  function clear() {
    localStorage.removeItem(KEY);
    setCookie("", 0);
  }

  async function postForm(path, fields) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
    let data = null;
    try { data = await res.json(); } catch { /* empty body */ }
    return { ok: res.ok, status: res.status, data };
  }

  async function signIn(username, password) {
    const r = await postForm("/api/token", { grant_type: "password", username, password });
    if (r.ok) { save(r.data); return null; }
    if (r.status === 429) return "Too many attempts. Wait a minute, then try again.";
    return (r.data && r.data.error_description) || `Sign-in failed (${r.status}).`;
  }

  let refreshing = null;
  function refresh() {
    // one refresh at a time: parallel requests share it
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const t = load();
      if (!t || !t.refresh_token) return null;
      try {
        const r = await postForm("/api/token", { grant_type: "refresh_token", refresh_token: t.refresh_token });
        if (r.ok) return save(r.data);
        if (r.status === 400 || r.status === 401) clear();  // refused: sign in again
        return null;
      } catch {
        return null;  // offline: keep the tokens for later
      }
    })();
    refreshing.finally(() => { refreshing = null; });
    return refreshing;
  }

  async function accessToken() {
    let t = load();
    if (t && Date.now() >= t.expires_at) t = await refresh();
    return t ? t.access_token : null;
  }

  function goLogin() {
    const next = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(next)}`);
  }

  function errorText(status, data) {
    if (data && data.error && data.error.message) return data.error.message;
    if (status === 0) return "The hub cannot be reached.";
    return `The hub answered ${status}.`;
  }

  // A JSON API call: {ok, status, data, error}. Never throws; a 401 that a
  // refresh cannot cure sends the browser to the login page.
  async function api(method, path, body) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = await accessToken();
      if (!token) { goLogin(); return { ok: false, status: 401, data: null, error: "Signed out." }; }
      const headers = { Authorization: `Bearer ${token}` };
      const init = { method, headers };
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let res;
      try {
        res = await fetch(path, init);
      } catch {
        return { ok: false, status: 0, data: null, error: errorText(0, null) };
      }
      let data = null;
      if (res.status !== 204) {
        try { data = await res.json(); } catch { /* not JSON */ }
      }
      if (res.status === 401 && attempt === 0 && (await refresh())) continue;
      if (res.status === 401) { goLogin(); }
      return { ok: res.ok, status: res.status, data, error: res.ok ? null : errorText(res.status, data) };
    }
    return { ok: false, status: 401, data: null, error: "Signed out." };
  }

  async function signOut() {
    const t = load();
    if (t && t.refresh_token) {
      try { await postForm("/api/token/revoke", { token: t.refresh_token }); } catch { /* offline */ }
    }
    clear();
    location.assign("/login");
  }

  // The Connect WebSocket: {type: devices|state|result|error} messages in,
  // commands out. Reconnects by itself with a growing pause; `onStatus` hears
  // "connecting", "open" and "closed" so the page can say so plainly.
  class Live {
    constructor({ onMessage, onStatus }) {
      this.onMessage = onMessage;
      this.onStatus = onStatus;
      this.pending = new Map();
      this.nextId = 1;
      this.delay = 500;
      this.ws = null;
      this.stopped = false;
      window.addEventListener("online", () => this.retryNow());
    }

    async connect() {
      if (this.stopped) return;
      this.onStatus("connecting");
      const token = await accessToken();
      if (!token) { goLogin(); return; }
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/v1/connect/ws?access_token=${encodeURIComponent(token)}`);
      this.ws = ws;
      ws.onopen = () => { this.delay = 500; this.onStatus("open"); };
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        if (msg.type === "result" && this.pending.has(msg.request_id)) {
          this.pending.get(msg.request_id)(msg);
          this.pending.delete(msg.request_id);
        }
        this.onMessage(msg);
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        for (const resolve of this.pending.values()) resolve({ ok: false, error: { message: "The connection to the hub was lost." } });
        this.pending.clear();
        this.onStatus("closed");
        if (ev.code === 4401 || ev.code === 1008) { refresh().then(() => this.schedule()); return; }
        this.schedule();
      };
    }

    schedule() {
      if (this.stopped) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    }

    retryNow() {
      if (!this.ws) { this.delay = 500; this.schedule(); }
    }

    // Send one command; resolves with the hub's result (ok or error).
    command(action, params) {
      return new Promise((resolve) => {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
          resolve({ ok: false, error: { message: "Not connected to the hub; reconnecting." } });
          return;
        }
        const request_id = `r${this.nextId++}`;
        this.pending.set(request_id, resolve);
        this.ws.send(JSON.stringify({ type: "command", request_id, action, ...params }));
      });
    }
  }

  return { api, signIn, signOut, refresh, accessToken, load, clear, Live, goLogin };
})();
