"use strict";
// The operator's console: sign-out, the fleet's live refresh, ingest, users,
// licences and releases. Every change goes through the admin JSON with the bearer token
// (Legato.api); the page cookie only ever served the page itself.
(() => {
  const $ = (sel) => document.querySelector(sel);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const when = (ms) => {
    if (!ms) return "—";
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const ago = (ms, now) => {
    if (!ms) return "never";
    const s = Math.max(0, Math.floor((now - ms) / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    const d = Math.floor(s / 86400);
    return `${d} day${d === 1 ? "" : "s"} ago`;
  };
  const size = (n) => {
    let v = n || 0;
    for (const unit of ["B", "KiB", "MiB", "GiB"]) {
      if (v < 1024 || unit === "GiB") return unit === "B" ? `${v.toFixed(0)} B` : `${v.toFixed(1)} ${unit}`;
      v /= 1024;
    }
    return "";
  };
  function say(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
    el.classList.toggle("error", !!isError);
  }

  const signOut = $("#sign-out");
  if (signOut) signOut.addEventListener("click", () => Legato.signOut());

  // --- fleet: poll the admin JSON every few seconds -------------------------------
  const fleetBody = $("#fleet-rows");
  function fleetRow(s, now) {
    const status = s.online ? '<span class="pill ok">online</span>'
      : `<span class="pill off">offline</span><span class="sub">seen ${esc(ago(s.last_seen_ms, now))}</span>`;
    const playing = s.track
      ? `<span class="state-icon" aria-hidden="true">${s.playing ? "▶" : "❚❚"}</span> ${esc(s.track)}<span class="sub">${esc(s.artists)}${s.playing ? "" : " · paused"}</span>`
      : '<span class="muted">nothing</span>';
    const buffer = s.buffer === "ok" ? '<span class="pill ok">ok</span>'
      : s.buffer === "buffering" ? '<span class="pill warn">buffering</span>'
      : `<span class="pill warn">${s.underruns_1h} underrun${s.underruns_1h === 1 ? "" : "s"} / h</span>`;
    const error = s.last_error ? `<span class="error-text">${esc(s.last_error)}</span><span class="sub">${esc(when(s.last_error_ms))}</span>` : '<span class="muted">none</span>';
    const cache = s.cache_tracks
      ? `${s.cache_ready}/${s.cache_tracks} tracks<span class="sub">${esc(size(s.cache_bytes))}${s.cache_failed ? ` · ${s.cache_failed} failed` : ""}</span>`
      : '<span class="muted">empty</span>';
    return `<tr data-id="${esc(s.id)}">
      <th scope="row" data-label="Speaker"><a href="/dashboard/speakers/${encodeURIComponent(s.id)}">${esc(s.name)}</a><span class="sub">${esc(s.model || "unknown model")} · fw ${esc(s.fw || "?")}</span></th>
      <td data-label="Status">${status}</td>
      <td data-label="Now playing">${playing}</td>
      <td data-label="Volume">${s.volume}%</td>
      <td data-label="Buffer">${buffer}</td>
      <td data-label="Quality">${esc(s.quality)}</td>
      <td data-label="Last error">${error}</td>
      <td data-label="Offline cache">${cache}</td>
      <td data-label="Licence expires">${s.licence_expires_ms ? esc(when(s.licence_expires_ms)) : "—"}</td>
    </tr>`;
  }
  async function refreshFleet() {
    const r = await Legato.api("GET", "/api/admin/fleet");
    const status = $("#fleet-status");
    if (!r.ok) { say(status, `Could not refresh: ${r.error}`, true); return; }
    say(status, "", false);
    const speakers = r.data.speakers;
    const html = speakers.map((s) => fleetRow(s, r.data.now_ms)).join("");
    if (fleetBody.dataset.html !== html) { fleetBody.innerHTML = html; fleetBody.dataset.html = html; }
    $("#count-online").textContent = speakers.filter((s) => s.online).length;
    $("#count-all").textContent = speakers.length;
    $("#count-playing").textContent = speakers.filter((s) => s.playing).length;
    $("#count-trouble").textContent = speakers.filter((s) => s.buffer !== "ok").length;
    const empty = $("#fleet-empty");
    if (empty) empty.hidden = speakers.length > 0;
    $(".table-wrap").hidden = speakers.length === 0;
    $("#fleet-updated").textContent = `Updated ${when(r.data.now_ms)}`;
  }
  if (fleetBody) {
    let timer = null;
    const tick = async () => {
      if (!document.hidden) await refreshFleet();
      timer = setTimeout(tick, 3000);
    };
    timer = setTimeout(tick, 3000);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) { clearTimeout(timer); tick(); }
    });
  }

  // --- catalog: start an ingest, then follow it -----------------------------------
  const jobCard = $("#ingest-job");
  const ingestMessage = $("#ingest-message");
  function showJob(job) {
    if (!job) return;
    jobCard.hidden = false;
    $("#job-state").textContent = job.state;
    $("#job-state").className = `pill ${job.state === "done" ? "ok" : job.state === "failed" ? "bad" : "warn"}`;
    $("#job-source").textContent = job.source;
    const progress = $("#job-progress");
    progress.max = Math.max(job.total, 1);
    progress.value = job.state === "running" ? job.done : progress.max;
    const stage = job.stage === "encode" ? "encoding" : "reading files";
    $("#job-progress-label").textContent = job.state === "running"
      ? `Progress: ${stage}, ${job.done} of ${job.total}` : "Progress: finished";
    const c = job.counts;
    $("#job-counts").textContent = `${c.added || 0} added, ${c.present || 0} already present, ${c.failed || 0} failed` + (job.error ? ` — ${job.error}` : "");
    $("#job-errors").innerHTML = job.errors.length
      ? job.errors.map((f) => `<li><strong>${esc(f.path)}</strong>: <span class="error-text">${esc(f.error)}</span></li>`).join("")
      : '<li class="muted">none</li>';
    $("#job-files").innerHTML = job.files.map((f) =>
      `<li><span class="pill ${f.status === "failed" ? "bad" : f.status === "added" ? "ok" : "plain"}">${esc(f.status)}</span> ${esc(f.path)}${f.name ? ` → ${esc(f.name)}` : ""}</li>`).join("");
  }
  let polling = false;
  async function followJob() {
    if (polling) return;
    polling = true;
    try {
      for (;;) {
        const r = await Legato.api("GET", "/api/admin/ingest");
        if (!r.ok) { say(ingestMessage, r.error, true); break; }
        showJob(r.data.job);
        if (!r.data.job || r.data.job.state !== "running") break;
        await new Promise((res) => setTimeout(res, 700));
      }
    } finally { polling = false; }
  }
  async function started(r) {
    if (!r.ok) { say(ingestMessage, r.error || `The hub answered ${r.status}.`, true); return; }
    say(ingestMessage, "", false);
    showJob(r.data.job);
    followJob();
  }
  const uploadForm = $("#upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const files = $("#upload-files").files;
      if (!files.length) { say(ingestMessage, "Choose one or more audio files first.", true); return; }
      const body = new FormData();
      for (const f of files) body.append("files", f, f.name);
      const button = uploadForm.querySelector("button");
      button.disabled = true;
      button.textContent = "Uploading…";
      try {
        const token = await Legato.accessToken();
        if (!token) { Legato.goLogin(); return; }
        let res, data = null;
        try {
          res = await fetch("/api/admin/ingest/upload", { method: "POST", headers: { Authorization: `Bearer ${token}` }, body });
          try { data = await res.json(); } catch { /* not JSON */ }
        } catch {
          say(ingestMessage, "The hub cannot be reached.", true);
          return;
        }
        const error = data && data.error && data.error.message;
        await started({ ok: res.ok, status: res.status, data, error });
        if (res.ok) uploadForm.reset();
      } finally {
        button.disabled = false;
        button.textContent = "Upload and ingest";
      }
    });
    $("#path-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const path = $("#server-path").value.trim();
      if (!path) { say(ingestMessage, "Enter a path on the hub.", true); return; }
      await started(await Legato.api("POST", "/api/admin/ingest/path", { path }));
    });
    if (jobCard && !jobCard.hidden) followJob();
  }

  // --- users ---------------------------------------------------------------------
  const addUser = $("#add-user-form");
  if (addUser) {
    addUser.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = addUser.elements;
      const body = { name: f.namedItem("name").value.trim(), password: f.namedItem("password").value, admin: f.namedItem("admin").checked };
      const r = await Legato.api("POST", "/api/admin/users", body);
      if (!r.ok) { say($("#add-user-error"), r.error, true); return; }
      location.reload();
    });
  }
  for (const button of document.querySelectorAll(".revoke-tokens")) {
    button.addEventListener("click", async () => {
      if (!confirm(`Sign ${button.dataset.name} out on every device?`)) return;
      const r = await Legato.api("POST", `/api/admin/users/${button.dataset.user}/revoke-tokens`);
      const msg = $("#users-message");
      if (!r.ok) { say(msg, r.error, true); return; }
      button.closest("tr").querySelector(".tokens").textContent = "0";
      button.disabled = true;
      say(msg, `${button.dataset.name}: ${r.data.revoked} token(s) revoked.`, false);
    });
  }

  // --- speakers: enrolment codes for legato-flash ---------------------------------
  const enrolButton = $("#new-enrolment");
  if (enrolButton) {
    enrolButton.addEventListener("click", async () => {
      const r = await Legato.api("POST", "/api/admin/enrolments");
      if (!r.ok) { say($("#enrolment-error"), r.error, true); return; }
      say($("#enrolment-error"), "", false);
      $("#enrolment-code").textContent = r.data.code;
      $("#enrolment-expiry").textContent = `single use, valid until ${when(r.data.expires_ms)}`;
      const fp = $("#hub-fingerprint").textContent;
      $("#enrolment-command").textContent =
        `legato-flash raspios-lite.img --hub https://${location.hostname}:${enrolButton.dataset.httpsPort} --hub-fingerprint ${fp} --enrol ${r.data.code} --name "Kitchen" --board BOARD`;
      $("#enrolment").hidden = false;
    });
  }

  // --- releases: add a wheel, roll out, halt ---------------------------------------
  const releaseForm = $("#release-form");
  const releasesMessage = $("#releases-message");
  async function sendForm(path, body) {
    const token = await Legato.accessToken();
    if (!token) { Legato.goLogin(); return null; }
    try {
      const res = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body });
      let data = null;
      try { data = await res.json(); } catch { /* not JSON */ }
      return { ok: res.ok, status: res.status, data, error: data && data.error && data.error.message };
    } catch {
      return { ok: false, status: 0, data: null, error: "The hub cannot be reached." };
    }
  }
  if (releaseForm) {
    releaseForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = $("#release-wheel").files[0];
      if (!file) { say(releasesMessage, "Choose a Legato wheel first.", true); return; }
      const body = new FormData();
      body.append("wheel", file, file.name);
      body.append("notes", $("#release-notes").value.trim());
      const button = releaseForm.querySelector("button");
      button.disabled = true;
      button.textContent = "Signing…";
      try {
        const r = await sendForm("/v1/releases", body);
        if (!r) return;
        if (!r.ok) { say(releasesMessage, r.error || `The hub answered ${r.status}.`, true); return; }
        location.reload();
      } finally {
        button.disabled = false;
        button.textContent = "Sign and add";
      }
    });
  }
  for (const form of document.querySelectorAll(".rollout-form")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const percent = form.elements.namedItem("percent").value.trim();
      const devices = form.elements.namedItem("devices").value.split(",").map((d) => d.trim()).filter(Boolean);
      if (!percent === !devices.length) { say(releasesMessage, "Give either a percent or speaker ids.", true); return; }
      const body = percent ? { percent: Number(percent) } : { devices };
      const r = await Legato.api("POST", `/v1/releases/${encodeURIComponent(form.dataset.version)}/rollout`, body);
      if (!r.ok) { say(releasesMessage, r.error, true); return; }
      location.reload();
    });
  }
  for (const button of document.querySelectorAll(".halt-release")) {
    button.addEventListener("click", async () => {
      if (!confirm(`Halt release ${button.dataset.version}? Speakers already on it keep it.`)) return;
      const r = await Legato.api("POST", `/v1/releases/${encodeURIComponent(button.dataset.version)}/halt`);
      if (!r.ok) { say(releasesMessage, r.error, true); return; }
      location.reload();
    });
  }

  // --- licences ------------------------------------------------------------------
  for (const button of document.querySelectorAll(".revoke-licence")) {
    button.addEventListener("click", async () => {
      if (!confirm(`Revoke the offline licence of ${button.dataset.label}? Its downloads there will be deleted.`)) return;
      const path = `/v1/devices/${encodeURIComponent(button.dataset.device)}/licence?user=${encodeURIComponent(button.dataset.user)}`;
      const r = await Legato.api("DELETE", path);
      const msg = $("#licences-message");
      if (!r.ok) { say(msg, r.error, true); return; }
      say(msg, `Revoked: ${button.dataset.label}.`, false);
      const cell = button.closest("tr").children[4];
      cell.innerHTML = '<span class="pill bad">revoked</span>';
      button.remove();
    });
  }
})();
