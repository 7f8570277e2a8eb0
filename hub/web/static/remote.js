"use strict";
// The listener's remote: speakers and their states arrive over the Connect
// WebSocket; commands go back over it. A pressed button shows its effect at
// once (optimistic) and the next state with a higher `revision` replaces the
// guess with what the speaker did. Catalog pages come from the JSON Web API.
// Every piece of catalog text goes in with textContent, never as HTML.
(() => {
  const $ = (id) => document.getElementById(id);
  const SPEAKER_KEY = "legato.speaker";

  const model = {
    devices: [],
    entries: new Map(), // device id -> {state, player, at (performance.now() at arrival)}
    selected: localStorage.getItem(SPEAKER_KEY),
    optimistic: null, // {device, baseRevision, patch, at}
    connected: false,
  };

  // --- small helpers ------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function iconSvg(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `#i-${name}`);
    svg.append(use);
    return svg;
  }

  function clock(ms) {
    const s = Math.max(0, Math.floor((ms || 0) / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }

  function megabytes(bytes) {
    if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
    if (bytes >= 1e5) return `${(bytes / 1e6).toFixed(1)} MB`;
    return `${Math.ceil(bytes / 1e3)} kB`;
  }

  function artists(item) {
    return (item.artists || []).map((a) => a.name).join(", ");
  }

  function isRadio(uri) {
    return typeof uri === "string" && uri.startsWith("legato:radio:");
  }

  function idOf(item) {
    return item.id || String(item.uri || "").split(":").pop();
  }

  function image(item, size = 300) {
    const images = item.images || (item.album && item.album.images) || [];
    if (!images.length) return null;
    const fit = images.find((i) => (i.width || 0) >= size) || images[0];
    return fit.url;
  }

  let toastTimer = null;
  function toast(message) {
    const box = $("toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  // --- the selected speaker's state, with any optimistic guess on top -----------

  function device(id) {
    return model.devices.find((d) => d.id === id) || null;
  }

  function current() {
    const entry = model.entries.get(model.selected);
    if (!entry) return null;
    const o = model.optimistic;
    if (!o || o.device !== model.selected) return entry;
    const state = { ...entry.state, ...o.patch.state };
    const player = { ...entry.player, ...o.patch.player };
    return { state, player, at: o.patch.player && "progress_ms" in o.patch.player ? o.at : entry.at };
  }

  function positionMs(entry) {
    if (!entry || !entry.player || entry.player.progress_ms == null) return 0;
    let pos = entry.player.progress_ms;
    if (entry.player.is_playing && !entry.state.buffering) pos += performance.now() - entry.at;
    const duration = entry.player.item ? entry.player.item.duration_ms : 0;
    return Math.max(0, Math.min(pos, duration));
  }

  // Send a command to the selected speaker; `patch` is what the page shows
  // meanwhile ({state: {...}, player: {...}}).
  async function send(action, params = {}, patch = null, target = model.selected) {
    if (!target) {
      toast("Choose a speaker first.");
      go("#/speakers");
      return false;
    }
    let guess = null;
    if (patch) {
      const entry = model.entries.get(target);
      guess = { device: target, baseRevision: entry ? entry.state.revision : -1, patch, at: performance.now() };
      model.optimistic = guess;
      renderNow();
    }
    const result = await live.command(action, { device_id: target, ...params });
    if (model.optimistic === guess) model.optimistic = null;
    renderNow();
    if (!result.ok) {
      toast((result.error && result.error.message) || "The speaker did not take that.");
      return false;
    }
    return true;
  }

  // --- live connection ----------------------------------------------------------

  function onMessage(msg) {
    if (msg.type === "devices") {
      model.devices = msg.devices;
      if (!device(model.selected)) {
        const active = msg.devices.find((d) => d.is_active && d.is_online);
        const online = msg.devices.find((d) => d.is_online);
        select((active || online || {}).id || null, false);
      }
      renderSpeakers();
      renderNow();
    } else if (msg.type === "state") {
      const before = model.entries.get(msg.device_id);
      const same = before && before.state.session === msg.state.session;
      if (same && msg.state.revision < before.state.revision) return; // older copy
      model.entries.set(msg.device_id, { state: msg.state, player: msg.player, at: performance.now() });
      const o = model.optimistic;
      if (o && o.device === msg.device_id && msg.state.revision > o.baseRevision) model.optimistic = null;
      renderSpeakers();
      renderNow();
      if (currentView === "queue") renderQueue();
    } else if (msg.type === "error" && msg.error) {
      toast(msg.error.message);
    }
  }

  function onStatus(status) {
    model.connected = status === "open";
    const box = $("connection");
    box.dataset.status = status;
    box.textContent = {
      open: "",
      connecting: "Connecting to the hub…",
      closed: "Connection to the hub lost — reconnecting…",
    }[status];
    document.body.classList.toggle("offline", status !== "open");
    renderNow();
  }

  const live = new Legato.Live({ onMessage, onStatus });

  // --- now playing ---------------------------------------------------------------

  function setIcon(button, name, label) {
    button.replaceChildren(iconSvg(name));
    button.setAttribute("aria-label", label);
    button.title = label;
  }

  let seeking = false;

  function renderNow() {
    const entry = current();
    const dev = device(model.selected);
    $("speaker-name").textContent = dev ? dev.name : "Choose a speaker";
    $("speaker-dot").className = `dot ${dev && dev.is_online ? "on" : "off"}`;
    $("speaker-button").setAttribute(
      "aria-label",
      dev ? `Speaker: ${dev.name}, ${dev.is_online ? "online" : "offline"}. Change speaker` : "Choose a speaker",
    );
    const item = entry && entry.player ? entry.player.item : null;
    const playing = Boolean(entry && entry.player && entry.player.is_playing);
    const usable = Boolean(dev && dev.is_online && model.connected);
    $("track-title").textContent = item ? item.name : "Nothing playing";
    $("track-artist").textContent = item
      ? `${artists(item)}${item.album && item.album.name ? ` — ${item.album.name}` : ""}`
      : dev ? `Search for music to play on ${dev.name}.` : "Choose a speaker, then search for music.";
    const details = item ? trackDetails(item.id) : null;
    const art = details ? image(details) : null;
    $("art").hidden = !art;
    $("art-empty").hidden = Boolean(art);
    if (art && $("art").getAttribute("src") !== art) {
      $("art").src = art;
      $("art").alt = item.album ? `Cover of ${item.album.name}` : "";
    }
    $("buffering").hidden = !(entry && entry.state.buffering && playing);
    const context = entry && entry.state.context_uri;
    $("now-context").hidden = !(item && isRadio(context));
    for (const id of ["play-pause", "mini-play"]) {
      setIcon($(id), playing ? "pause" : "play", playing ? "Pause" : "Play");
      $(id).disabled = !usable || !item;
    }
    for (const id of ["next", "previous", "shuffle", "repeat"]) $(id).disabled = !usable || !item;
    const shuffle = Boolean(entry && entry.state.shuffle);
    $("shuffle").setAttribute("aria-pressed", String(shuffle));
    $("shuffle").title = shuffle ? "Shuffle: on" : "Shuffle: off";
    const repeat = entry ? entry.state.repeat : "off";
    $("repeat").setAttribute("aria-pressed", String(repeat !== "off"));
    $("repeat").setAttribute("aria-label", `Repeat: ${{ off: "off", context: "all", track: "this track" }[repeat]}`);
    $("repeat").title = $("repeat").getAttribute("aria-label");
    $("repeat-one").hidden = repeat !== "track";
    const volume = entry ? entry.state.volume_percent : dev ? dev.volume_percent : null;
    if (!volumeDragging && volume != null) $("volume").value = volume;
    $("volume-value").textContent = volume == null ? "–" : `${$("volume").value}%`;
    $("volume").disabled = !usable || (dev && dev.supports_volume === false);
    $("seek").disabled = !usable || !item;
    $("seek").max = item ? item.duration_ms : 0;
    $("duration").textContent = clock(item ? item.duration_ms : 0);
    $("mini").hidden = !item || currentView === "now";
    $("mini-title").textContent = item ? item.name : "";
    $("mini-artist").textContent = item ? artists(item) : "";
    tick();
  }

  // The state carries a track's name and artists; its album and art come from the catalog.
  const detailsCache = new Map();
  function trackDetails(id) {
    if (!id) return null;
    if (!detailsCache.has(id)) {
      detailsCache.set(id, null);
      Legato.api("GET", `/v1/tracks/${encodeURIComponent(id)}`).then((r) => {
        if (r.ok) { detailsCache.set(id, r.data); renderNow(); }
      });
    }
    return detailsCache.get(id);
  }

  function tick() {
    const entry = current();
    const item = entry && entry.player ? entry.player.item : null;
    const pos = positionMs(entry);
    if (!seeking) {
      $("seek").value = pos;
      $("elapsed").textContent = clock(pos);
    }
    const total = item ? item.duration_ms : 0;
    $("seek").setAttribute("aria-valuetext", `${clock(seeking ? $("seek").value : pos)} of ${clock(total)}`);
    $("mini-bar").style.width = total ? `${(100 * pos) / total}%` : "0";
  }

  function frame() {
    tick();
    requestAnimationFrame(frame);
  }

  function togglePlay() {
    const entry = current();
    if (!entry || !entry.player) return;
    const pos = positionMs(entry);
    if (entry.player.is_playing) {
      send("pause", {}, { state: { is_playing: false }, player: { is_playing: false, progress_ms: pos } });
    } else {
      send("play", {}, { state: { is_playing: true }, player: { is_playing: true, progress_ms: pos } });
    }
  }

  $("play-pause").addEventListener("click", togglePlay);
  $("mini-play").addEventListener("click", togglePlay);
  $("next").addEventListener("click", () => send("next"));
  $("previous").addEventListener("click", () => send("previous"));
  $("shuffle").addEventListener("click", () => {
    const on = !(current() && current().state.shuffle);
    send("shuffle", { state: on }, { state: { shuffle: on }, player: { shuffle_state: on } });
  });
  $("repeat").addEventListener("click", () => {
    const order = ["off", "context", "track"];
    const now = current() ? current().state.repeat : "off";
    const next = order[(order.indexOf(now) + 1) % order.length];
    send("repeat", { state: next }, { state: { repeat: next }, player: { repeat_state: next } });
  });

  $("seek").addEventListener("input", () => {
    seeking = true;
    $("elapsed").textContent = clock(Number($("seek").value));
    tick();
  });
  $("seek").addEventListener("change", () => {
    const target = Number($("seek").value);
    seeking = false;
    send("seek", { position_ms: target }, { player: { progress_ms: target } });
  });

  let volumeDragging = false;
  let volumeTimer = null;
  $("volume").addEventListener("input", () => {
    volumeDragging = true;
    $("volume-value").textContent = `${$("volume").value}%`;
    clearTimeout(volumeTimer);
    volumeTimer = setTimeout(sendVolume, 150); // at most one command per pause in the drag
  });
  $("volume").addEventListener("change", () => {
    clearTimeout(volumeTimer);
    sendVolume().then(() => { volumeDragging = false; });
  });
  function sendVolume() {
    const value = Number($("volume").value);
    return send("volume", { volume_percent: value }, { state: { volume_percent: value } });
  }

  // --- speakers ------------------------------------------------------------------

  function select(id, announce = true) {
    model.selected = id;
    if (id) localStorage.setItem(SPEAKER_KEY, id);
    renderSpeakers();
    renderNow();
    if (announce && id) {
      const dev = device(id);
      toast(`Now controlling ${dev ? dev.name : id}.`);
    }
  }

  function playingElsewhere(id) {
    for (const [devId, entry] of model.entries) {
      const dev = device(devId);
      if (devId !== id && dev && dev.is_online && entry.player && entry.player.item && entry.player.is_playing) {
        return devId;
      }
    }
    return null;
  }

  function renderSpeakers() {
    renderGroupForm();
    const list = $("speaker-list");
    list.replaceChildren();
    if (!model.devices.length) {
      list.append(el("li", { class: "empty muted", text: "No speakers yet. Start one with legato-speaker, or run make demo." }));
      return;
    }
    for (const dev of model.devices) {
      const entry = model.entries.get(dev.id);
      const item = entry && entry.player && entry.player.item;
      const playing = dev.is_online
        ? item ? `${entry.player.is_playing ? "Playing" : "Paused"}: ${item.name}` : "Online, idle"
        : "Offline";
      const status = dev.type === "Group"
        ? `Group of ${(dev.device_ids || []).map((id) => (device(id) || { name: id }).name).join(", ")} · ${playing}`
        : dev.group_id && device(dev.group_id) ? `In ${device(dev.group_id).name} · ${playing}` : playing;
      const chosen = dev.id === model.selected;
      const buttons = el("div", { class: "row-actions" });
      if (!chosen) {
        buttons.append(el("button", {
          type: "button", text: "Control", "aria-label": `Control ${dev.name}`,
          disabled: !dev.is_online, onclick: () => { select(dev.id); go("#/now"); },
        }));
      }
      if (dev.type === "Group") {
        buttons.append(
          el("button", { type: "button", text: "Change", "aria-label": `Change ${dev.name}`, onclick: () => editGroup(dev) }),
          el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${dev.name}`, onclick: () => deleteGroup(dev) }));
      }
      const from = playingElsewhere(dev.id);
      if (from && dev.is_online) {
        buttons.append(el("button", {
          type: "button", class: "primary", text: "Move playback here",
          "aria-label": `Move playback from ${device(from).name} to ${dev.name}`,
          onclick: () => transfer(dev.id),
        }));
      }
      list.append(el("li", { class: `row speaker${dev.type === "Group" ? " group" : ""}${chosen ? " chosen" : ""}`, "data-device": dev.id },
        el("span", { class: `dot ${dev.is_online ? "on" : "off"}`, "aria-hidden": "true" }),
        el("div", { class: "row-text" },
          el("span", { class: "title", text: `${dev.name}${chosen ? " (this remote)" : ""}` }),
          el("span", { class: "sub muted", text: `${status}${dev.model ? ` · ${dev.model}` : ""}` })),
        buttons));
    }
  }

  // --- groups: speakers that play as one -------------------------------------------------

  let editingGroup = null; // the group being changed, or null: the form makes a new one
  let groupChoices = ""; // the speakers the form offers, so a re-render keeps the ticks

  function renderGroupForm() {
    const speakers = model.devices.filter((d) => d.type !== "Group");
    const key = speakers.map((d) => `${d.id}:${d.name}`).join("|");
    if (key === groupChoices) return;
    groupChoices = key;
    const ticked = new Set([...document.querySelectorAll("#group-members input:checked")].map((i) => i.value));
    $("group-members").replaceChildren(...speakers.map((d) => el("label", {},
      el("input", { type: "checkbox", value: d.id, checked: ticked.has(d.id) }), d.name)));
  }

  function editGroup(group) {
    editingGroup = group.id;
    $("group-name").value = group.name;
    for (const box of document.querySelectorAll("#group-members input")) box.checked = (group.device_ids || []).includes(box.value);
    $("group-heading").textContent = `Change ${group.name}`;
    $("group-submit").textContent = "Save group";
    $("group-cancel").hidden = false;
    $("group-name").focus();
  }

  function resetGroupForm() {
    editingGroup = null;
    $("group-form").reset();
    $("group-heading").textContent = "Make a group";
    $("group-submit").textContent = "Make group";
    $("group-cancel").hidden = true;
  }

  async function deleteGroup(group) {
    const r = await Legato.api("DELETE", `/v1/groups/${encodeURIComponent(group.id)}`);
    if (!r.ok) { toast(r.error); return; }
    if (editingGroup === group.id) resetGroupForm();
    toast(`Deleted ${group.name}.`);
  }

  $("group-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("group-name").value.trim();
    const ids = [...document.querySelectorAll("#group-members input:checked")].map((i) => i.value);
    if (!name) return;
    if (ids.length < 2) { toast("Choose at least two speakers for a group."); return; }
    const r = editingGroup
      ? await Legato.api("PUT", `/v1/groups/${encodeURIComponent(editingGroup)}`, { name, device_ids: ids })
      : await Legato.api("POST", "/v1/groups", { name, device_ids: ids });
    if (!r.ok) { toast(r.error); return; }
    toast(editingGroup ? `Saved ${name}.` : `Made ${name}: choose it to play everywhere at once.`);
    resetGroupForm();
  });
  $("group-cancel").addEventListener("click", resetGroupForm);

  async function transfer(id) {
    const ok = await send("transfer", { device_ids: [id], play: true }, null, id);
    if (ok) {
      select(id, false);
      toast(`Playback moved to ${device(id) ? device(id).name : id}.`);
      go("#/now");
    }
  }

  // --- playing from the catalog ------------------------------------------------------

  async function play(params) {
    const ok = await send("play", params);
    if (ok) go("#/now");
  }

  function trackRow(track, { onplay, index, extra } = {}) {
    const label = `${track.name} — ${artists(track)}`;
    const more = el("div", { class: "row-actions" },
      el("button", {
        type: "button", class: "icon ghost", "aria-label": `Add ${track.name} to the queue`, title: "Add to queue",
        onclick: () => send("queue", { uri: track.uri }).then((ok) => ok && toast(`Queued: ${track.name}`)),
      }, iconSvg("queue")),
      el("button", {
        type: "button", class: "icon ghost", "aria-label": `Add ${track.name} to a playlist`, title: "Add to playlist",
        onclick: () => pickPlaylist(track),
      }, iconSvg("library")),
      el("a", {
        class: "button icon ghost", href: `#/track/${encodeURIComponent(idOf(track))}`,
        "aria-label": `${track.name}: radio and more like this`, title: "Track page",
      }, iconSvg("more")),
      extra || null);
    return el("li", { class: "row track" },
      el("button", { type: "button", class: "row-main", "aria-label": `Play ${label}`, onclick: onplay },
        index != null ? el("span", { class: "num muted", text: String(index + 1) }) : null,
        el("span", { class: "row-text" },
          el("span", { class: "title", text: track.name }),
          el("span", { class: "sub muted", text: `${artists(track)} · ${clock(track.duration_ms)}` }))),
      more);
  }

  function cardRow(item, href, sub) {
    const art = image(item, 64);
    return el("li", { class: "row" },
      el("a", { class: "row-main", href },
        art ? el("img", { class: "thumb", src: art, alt: "", width: "48", height: "48", loading: "lazy" })
          : el("span", { class: "thumb", "aria-hidden": "true" }),
        el("span", { class: "row-text" },
          el("span", { class: "title", text: item.name }),
          el("span", { class: "sub muted", text: sub }))));
  }

  // --- search with typeahead ------------------------------------------------------

  let searchAbort = null;
  let searchTimer = null;
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
  $("search-input").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 120);
  });

  async function runSearch() {
    const q = $("search-input").value.trim();
    if (searchAbort) searchAbort.abort();
    const results = $("search-results");
    if (!q) { results.replaceChildren(); $("search-status").textContent = ""; return; }
    const abort = new AbortController();
    searchAbort = abort;
    const token = await Legato.accessToken();
    let data;
    try {
      const res = await fetch(`/v1/search?type=track,album,artist,playlist&limit=6&q=${encodeURIComponent(q)}`, {
        headers: { Authorization: `Bearer ${token}` }, signal: abort.signal,
      });
      if (res.status === 401) { Legato.goLogin(); return; }
      data = await res.json();
      if (!res.ok) { $("search-status").textContent = data.error ? data.error.message : "Search failed."; return; }
    } catch (err) {
      if (err.name !== "AbortError") $("search-status").textContent = "The hub cannot be reached.";
      return;
    }
    if (abort !== searchAbort) return; // a newer search is on its way
    const groups = [];
    const tracks = (data.tracks && data.tracks.items) || [];
    const albums = (data.albums && data.albums.items) || [];
    const artistsFound = (data.artists && data.artists.items) || [];
    const playlists = (data.playlists && data.playlists.items) || [];
    if (tracks.length) {
      groups.push(el("h2", { text: "Tracks" }), el("ul", { class: "list" },
        ...tracks.map((t) => trackRow(t, { onplay: () => play({ uris: [t.uri] }) }))));
    }
    if (artistsFound.length) {
      groups.push(el("h2", { text: "Artists" }), el("ul", { class: "list" },
        ...artistsFound.map((a) => cardRow(a, `#/artist/${a.id}`, "Artist"))));
    }
    if (albums.length) {
      groups.push(el("h2", { text: "Albums" }), el("ul", { class: "list" },
        ...albums.map((a) => cardRow(a, `#/album/${a.id}`, `Album · ${artists(a)}`))));
    }
    if (playlists.length) {
      groups.push(el("h2", { text: "Playlists" }), el("ul", { class: "list" },
        ...playlists.filter(Boolean).map((p) => cardRow(p, `#/playlist/${p.id}`, `Playlist · ${p.owner ? p.owner.display_name || p.owner.id : ""}`))));
    }
    const count = tracks.length + albums.length + artistsFound.length + playlists.length;
    $("search-status").textContent = count ? `${count} results for “${q}”` : `Nothing found for “${q}”.`;
    results.replaceChildren(...groups);
  }

  // --- album, artist and playlist pages ----------------------------------------------

  function header(item, kind, sub, actions) {
    const art = image(item);
    return el("div", { class: "detail-head" },
      art ? el("img", { class: "cover", src: art, alt: `Cover of ${item.name}`, width: "160", height: "160" })
        : el("div", { class: "cover art-empty", "aria-hidden": "true" }),
      el("div", {},
        el("p", { class: "muted small", text: kind }),
        el("h1", { text: item.name }),
        el("p", { class: "muted", text: sub }),
        el("div", { class: "row-actions" }, ...actions)));
  }

  function downloadButton(item, kind) {
    return el("button", {
      type: "button", text: "Download…", "aria-label": `Download this ${kind} to a speaker for offline play`,
      onclick: () => openDownload(item, kind),
    });
  }

  async function showAlbum(id) {
    const r = await Legato.api("GET", `/v1/albums/${encodeURIComponent(id)}`);
    if (!r.ok) return detailError(r.error);
    const album = r.data;
    const tracks = album.tracks.items;
    const playAll = el("button", { type: "button", class: "primary", text: "Play", onclick: () => play({ context_uri: album.uri }) });
    $("detail").replaceChildren(
      header(album, "Album", `${artists(album)} · ${album.release_date ? album.release_date.slice(0, 4) + " · " : ""}${tracks.length} tracks`,
        [playAll, radioButton("album", album), downloadButton(album, "album")]),
      el("ol", { class: "list" }, ...tracks.map((t, i) =>
        trackRow(t, { index: i, onplay: () => play({ context_uri: album.uri, offset: { uri: t.uri } }) }))),
      moreLikeThis(tracks.slice(0, 5).map(idOf), album.name));
    focusHeading();
  }

  async function showArtist(id) {
    const [artist, top, albums] = await Promise.all([
      Legato.api("GET", `/v1/artists/${encodeURIComponent(id)}`),
      Legato.api("GET", `/v1/artists/${encodeURIComponent(id)}/top-tracks`),
      Legato.api("GET", `/v1/artists/${encodeURIComponent(id)}/albums?limit=50`),
    ]);
    if (!artist.ok) return detailError(artist.error);
    const tracks = top.ok ? top.data.tracks : [];
    const uris = tracks.map((t) => t.uri);
    $("detail").replaceChildren(
      header(artist.data, "Artist", "", [
        el("button", { type: "button", class: "primary", text: "Play top tracks", disabled: !uris.length, onclick: () => play({ uris }) }),
        radioButton("artist", artist.data),
      ]),
      el("h2", { text: "Popular" }),
      el("ol", { class: "list" }, ...tracks.map((t, i) => trackRow(t, { index: i, onplay: () => play({ uris, offset: { position: i } }) }))),
      el("h2", { text: "Albums" }),
      el("ul", { class: "list" }, ...(albums.ok ? albums.data.items : []).map((a) =>
        cardRow(a, `#/album/${a.id}`, a.release_date ? a.release_date.slice(0, 4) : "Album"))));
    focusHeading();
  }

  async function showTrack(id) {
    const r = await Legato.api("GET", `/v1/tracks/${encodeURIComponent(id)}`);
    if (!r.ok) return detailError(r.error);
    const track = r.data;
    const album = track.album || null;
    $("detail").replaceChildren(
      header({ ...track, images: album ? album.images : [] }, "Track",
        `${artists(track)}${album ? ` · ${album.name}` : ""} · ${clock(track.duration_ms)}`, [
          el("button", { type: "button", class: "primary", text: "Play", onclick: () => play({ uris: [track.uri] }) }),
          radioButton("track", track),
          album ? el("a", { class: "button", href: `#/album/${encodeURIComponent(album.id)}`, text: "Album" }) : null,
        ]),
      moreLikeThis([track.id], track.name));
    focusHeading();
  }

  // A radio plays what the hub recommends for you from a track, album or artist.
  function radioButton(kind, item) {
    return el("button", {
      type: "button", text: "Start radio", "aria-label": `Start a radio based on ${item.name}`,
      onclick: () => play({ context_uri: `legato:radio:${kind}:${idOf(item)}` }),
    });
  }

  // "More like this": recommendations seeded by up to five tracks, each row playable.
  function moreLikeThis(seedIds, name) {
    const list = el("ul", { class: "list", "aria-busy": "true" },
      el("li", { class: "empty muted", text: "Finding music like this…" }));
    const section = el("section", { class: "more-like", "aria-label": `More like ${name}` },
      el("h2", { text: "More like this" }), list);
    const seeds = seedIds.filter(Boolean).slice(0, 5);
    Legato.api("GET", `/v1/recommendations?limit=20&seed_tracks=${seeds.map(encodeURIComponent).join(",")}`).then((r) => {
      list.removeAttribute("aria-busy");
      const found = r.ok ? r.data.tracks.filter((t) => !seeds.includes(t.id)) : [];
      const uris = found.map((t) => t.uri);
      list.replaceChildren(...found.map((t, i) => trackRow(t, { onplay: () => play({ uris, offset: { position: i } }) })));
      if (!found.length) list.append(el("li", { class: "empty muted", text: r.ok ? "Nothing like this yet." : r.error }));
    });
    return section;
  }

  async function showPlaylist(id) {
    const [meta, items] = await Promise.all([
      Legato.api("GET", `/v1/playlists/${encodeURIComponent(id)}`),
      Legato.api("GET", `/v1/playlists/${encodeURIComponent(id)}/tracks?limit=100`),
    ]);
    if (!meta.ok) return detailError(meta.error);
    const playlist = meta.data;
    const rows = items.ok ? items.data.items.filter((i) => i.track) : [];
    const mine = me && playlist.owner && playlist.owner.id === me.id;
    let snapshot = playlist.snapshot_id;
    const list = el("ol", { class: "list" });
    const draw = () => {
      list.replaceChildren(...rows.map((row, i) => {
        const moves = mine ? el("span", { class: "reorder" },
          el("button", { type: "button", class: "icon ghost", text: "↑", disabled: i === 0,
            "aria-label": `Move ${row.track.name} up`, onclick: () => move(i, i - 1) }),
          el("button", { type: "button", class: "icon ghost", text: "↓", disabled: i === rows.length - 1,
            "aria-label": `Move ${row.track.name} down`, onclick: () => move(i, i + 2) })) : null;
        return trackRow(row.track, { index: i, extra: moves, onplay: () => play({ context_uri: playlist.uri, offset: { position: i } }) });
      }));
      if (!rows.length) list.append(el("li", { class: "empty muted", text: "This playlist is empty. Add tracks from search or an album." }));
    };
    async function move(from, before) {
      const r = await Legato.api("PUT", `/v1/playlists/${encodeURIComponent(id)}/tracks`,
        { range_start: from, insert_before: before, snapshot_id: snapshot });
      if (!r.ok) { toast(r.error); return showPlaylist(id); }
      snapshot = r.data.snapshot_id;
      const [row] = rows.splice(from, 1);
      rows.splice(before > from ? before - 1 : before, 0, row);
      draw();
      const moved = list.querySelectorAll(".reorder button")[2 * rows.indexOf(row) + (before > from ? 1 : 0)];
      if (moved && !moved.disabled) moved.focus();
    }
    draw();
    $("detail").replaceChildren(
      header(playlist, "Playlist", `${playlist.owner ? playlist.owner.display_name || playlist.owner.id : ""} · ${rows.length} tracks`, [
        el("button", { type: "button", class: "primary", text: "Play", disabled: !rows.length, onclick: () => play({ context_uri: playlist.uri }) }),
        downloadButton(playlist, "playlist"),
      ]),
      list);
    focusHeading();
  }

  function detailError(message) {
    $("detail").replaceChildren(el("h1", { text: "Not available" }), el("p", { class: "error", text: message }));
  }

  function focusHeading() {
    const h = $("detail").querySelector("h1");
    if (h) { h.tabIndex = -1; h.focus({ preventScroll: true }); }
  }

  // --- playlists ---------------------------------------------------------------------

  let me = null;
  let myPlaylists = [];

  async function loadPlaylists() {
    const r = await Legato.api("GET", "/v1/me/playlists?limit=50");
    myPlaylists = r.ok ? r.data.items : [];
    const list = $("playlists");
    list.replaceChildren(...myPlaylists.map((p) =>
      cardRow(p, `#/playlist/${p.id}`, `${p.tracks ? p.tracks.total : 0} tracks`)));
    if (!myPlaylists.length) list.append(el("li", { class: "empty muted", text: "No playlists yet: name one above." }));
  }

  $("new-playlist").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("new-playlist-name").value.trim();
    if (!name) return;
    const r = await Legato.api("POST", "/v1/me/playlists", { name, public: false });
    if (!r.ok) { toast(r.error); return; }
    $("new-playlist-name").value = "";
    toast(`Created “${name}”.`);
    await loadPlaylists();
  });

  async function pickPlaylist(track) {
    await loadPlaylists();
    const dialog = $("playlist-picker");
    $("playlist-picker-track").textContent = track.name;
    const mine = myPlaylists.filter((p) => me && p.owner && p.owner.id === me.id);
    $("playlist-picker-list").replaceChildren(...mine.map((p) => el("li", {},
      el("button", { type: "button", class: "row-main", text: p.name, onclick: async () => {
        dialog.close();
        const r = await Legato.api("POST", `/v1/playlists/${encodeURIComponent(p.id)}/tracks`, { uris: [track.uri] });
        toast(r.ok ? `Added to “${p.name}”.` : r.error);
      } }))));
    if (!mine.length) $("playlist-picker-list").append(el("li", { class: "muted", text: "Create a playlist first (Playlists tab)." }));
    dialog.showModal();
  }

  // --- downloads for offline -----------------------------------------------------------

  async function openDownload(item, kind) {
    const dev = device(model.selected);
    if (!dev) { toast("Choose a speaker first."); go("#/speakers"); return; }
    const dialog = $("download-dialog");
    const confirm = $("download-confirm");
    $("download-what").textContent = `${item.name} (${kind}) to ${dev.name}.`;
    $("download-estimate").textContent = "Estimating…";
    confirm.disabled = true;
    dialog.showModal();
    const [est, have] = await Promise.all([
      Legato.api("GET", `/v1/devices/${encodeURIComponent(dev.id)}/downloads/estimate?uris=${encodeURIComponent(item.uri)}`),
      Legato.api("GET", `/v1/devices/${encodeURIComponent(dev.id)}/downloads`),
    ]);
    if (!est.ok) { $("download-estimate").textContent = est.error; return; }
    const b = est.data.bytes;
    const existing = have.ok ? have.data.items.find((i) => i.uri === item.uri) : null;
    $("download-estimate").textContent =
      `${est.data.tracks} tracks, ${clock(est.data.duration_ms)}: about ${megabytes(b.high)} at high quality ` +
      `(${megabytes(b.low)} low, ${megabytes(b.very_high)} very high).` +
      (existing ? ` Already on this speaker: ${existing.state}, ${existing.tracks_ready} of ${existing.tracks} tracks.` : "");
    confirm.disabled = false;
    confirm.onclick = async (ev) => {
      ev.preventDefault();
      confirm.disabled = true;
      const r = await Legato.api("PUT", `/v1/devices/${encodeURIComponent(dev.id)}/downloads`, { uris: [item.uri] });
      dialog.close();
      toast(r.ok ? `Downloading to ${dev.name}; it plays offline once ready.` : r.error);
    };
  }

  // --- the listener's own settings: autoplay, and their history ------------------------

  let autoplay = null; // unknown until the hub says
  function renderAutoplay() {
    const button = $("autoplay");
    button.setAttribute("aria-pressed", String(autoplay === true));
    button.textContent = `Autoplay: ${autoplay === null ? "…" : autoplay ? "on" : "off"}`;
    button.disabled = autoplay === null;
  }

  async function loadAutoplay() {
    const r = await Legato.api("GET", "/v1/me/player/autoplay");
    if (r.ok) autoplay = Boolean(r.data.autoplay);
    renderAutoplay();
  }

  $("autoplay").addEventListener("click", async () => {
    const want = !autoplay;
    autoplay = want; // shown at once; put back if the hub refuses
    renderAutoplay();
    const r = await Legato.api("PUT", `/v1/me/player/autoplay?state=${want}`);
    if (!r.ok) {
      autoplay = !want;
      renderAutoplay();
      toast(r.error);
    }
  });

  $("clear-history").addEventListener("click", async () => {
    if (!window.confirm("Clear your whole listening history? Your radio and mixes start again from nothing.")) return;
    const r = await Legato.api("DELETE", "/v1/me/player/recently-played");
    toast(r.ok ? "Your listening history is cleared." : r.error);
  });

  // --- queue -----------------------------------------------------------------------

  function renderQueue() {
    const entry = current();
    const now = $("queue-now");
    const next = $("queue-list");
    now.replaceChildren();
    next.replaceChildren();
    if (!entry || !entry.state.current) {
      now.append(el("li", { class: "empty muted", text: "Nothing playing." }));
      return;
    }
    const s = entry.state;
    const ref = (t) => ({ name: t.name || t.uri, uri: t.uri, duration_ms: t.duration_ms, artists: (t.artists || []).map((n) => ({ name: n })) });
    now.append(trackRow(ref(s.current), { onplay: () => go("#/now") }));
    const upcoming = [...s.queue.map(ref)];
    const order = s.order && s.order.length ? s.order : s.tracks.map((_, i) => i);
    const at = s.from_queue ? s.index : s.index;
    for (const i of order.slice(at + 1)) upcoming.push(ref(s.tracks[i]));
    for (const [i, t] of upcoming.slice(0, 100).entries()) {
      next.append(trackRow(t, { index: i, onplay: () => send("play", s.context_uri ? { context_uri: s.context_uri, offset: { uri: t.uri } } : { uris: [t.uri] }) }));
    }
    if (!upcoming.length) next.append(el("li", { class: "empty muted", text: "Nothing after this track." }));
  }

  // --- views (the URL's hash) ----------------------------------------------------------

  let currentView = "now";

  // A view opens in the task of the click (or key) that asks for it. Left to
  // `hashchange`, it opened a task later, after the browser had already handed
  // keys pressed meanwhile (input goes first) to the link: the first letters
  // typed into Search straight after opening it were lost. Back and forward
  // still arrive as `hashchange`.
  function go(hash) {
    if (location.hash !== hash) history.pushState(null, "", hash);
    route();
  }

  document.addEventListener("click", (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const link = ev.target instanceof Element ? ev.target.closest('a[href^="#/"]') : null;
    if (!link) return;
    ev.preventDefault();
    go(link.getAttribute("href"));
  });

  function route() {
    const [, view = "now", id] = location.hash.split("/");
    const name = ["album", "artist", "playlist", "track"].includes(view) ? "detail" : view;
    const known = ["now", "search", "detail", "library", "queue", "speakers"];
    currentView = known.includes(name) ? name : "now";
    for (const section of document.querySelectorAll(".view")) section.hidden = section.dataset.view !== currentView;
    for (const tab of document.querySelectorAll(".tabbar a")) {
      if (tab.dataset.tab === currentView) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    if (view === "album") showAlbum(id);
    else if (view === "artist") showArtist(id);
    else if (view === "playlist") showPlaylist(id);
    else if (view === "track") showTrack(id);
    else if (currentView === "library") loadPlaylists();
    else if (currentView === "queue") renderQueue();
    else if (currentView === "search") $("search-input").focus();
    if (currentView === "detail") $("detail").replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    renderNow();
    window.scrollTo(0, 0);
  }

  window.addEventListener("hashchange", route);
  $("sign-out").addEventListener("click", () => Legato.signOut());

  async function start() {
    const r = await Legato.api("GET", "/v1/me");
    if (r.ok) me = r.data;
    loadAutoplay();
    route();
    live.connect();
    requestAnimationFrame(frame);
    if ("serviceWorker" in navigator && (location.protocol === "https:" || location.hostname === "127.0.0.1" || location.hostname === "localhost")) {
      navigator.serviceWorker.register("/remote/sw.js", { scope: "/remote" }).catch(() => {});
    }
  }

  start();
})();
