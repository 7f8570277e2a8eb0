"""The hub's schema, as the list of migrations that built it (``PRAGMA user_version``
counts those applied).

Append only: a released migration is never edited, so every hub.db reaches the same
schema.  Tables by concern: accounts (users, tokens), fleet (devices, broker_users,
device_events), catalog (tracks, albums, artists, credits, features, search
documents), library (playlists, saved_tracks, plays), media (media, album_art),
offline (download items and progress, device keys, licences), releases (releases,
rollouts, device_updates), groups (groups, group_members).  Migrations 3 and 4
backfill with the SQL functions ``legato_artist_id`` and ``legato_search_text``, which
:func:`hub.catalog.sql_functions.register` provides on every connection.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: accounts, tokens, device registry, broker users, a minimal catalog
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        fw TEXT NOT NULL DEFAULT '',
        online INTEGER NOT NULL DEFAULT 0,
        last_seen_ms INTEGER NOT NULL DEFAULT 0,
        state_json TEXT
    );
    CREATE TABLE broker_users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('hub', 'speaker', 'observer')),
        secret_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE tracks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        artist TEXT NOT NULL,
        album TEXT NOT NULL,
        album_id TEXT NOT NULL,
        track_number INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL CHECK (duration_ms > 0)
    );
    CREATE INDEX tracks_album ON tracks(album_id, track_number);
    """,
    # 2: ingested audio (hub.media.store) and album art
    """
    CREATE TABLE media (
        track_id TEXT PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
        content_hash TEXT NOT NULL UNIQUE,
        source_path TEXT NOT NULL,
        manifest_json TEXT NOT NULL,
        ingested_ms INTEGER NOT NULL
    );
    CREATE TABLE album_art (
        album_id TEXT PRIMARY KEY,
        mime TEXT NOT NULL,
        path TEXT NOT NULL
    );
    """,
    # 3: the full catalog: artists, albums, ordered credits, audio features,
    # markets; playlists, saved tracks, plays; refresh tokens.  ``tracks.artist`` and
    # ``tracks.album`` stay as display names (what the speaker shows); the credits
    # tables are the truth for the Web API.  Markets: space-separated ISO 3166-1
    # alpha-2 codes, '' = available everywhere.
    """
    CREATE TABLE artists (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        popularity INTEGER NOT NULL DEFAULT 0 CHECK (popularity BETWEEN 0 AND 100),
        followers INTEGER NOT NULL DEFAULT 0,
        genres TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE albums (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        album_type TEXT NOT NULL DEFAULT 'album'
            CHECK (album_type IN ('album', 'single', 'compilation')),
        release_date TEXT NOT NULL DEFAULT '',
        release_year INTEGER,
        popularity INTEGER NOT NULL DEFAULT 0 CHECK (popularity BETWEEN 0 AND 100),
        label TEXT NOT NULL DEFAULT '',
        markets TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX albums_year ON albums(release_year);
    CREATE TABLE album_artists (
        album_id TEXT NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
        artist_id TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        PRIMARY KEY (album_id, position)
    );
    CREATE INDEX album_artists_artist ON album_artists(artist_id);
    ALTER TABLE tracks ADD COLUMN disc_number INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE tracks ADD COLUMN isrc TEXT;
    ALTER TABLE tracks ADD COLUMN explicit INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tracks ADD COLUMN popularity INTEGER NOT NULL DEFAULT 0
        CHECK (popularity BETWEEN 0 AND 100);
    ALTER TABLE tracks ADD COLUMN markets TEXT NOT NULL DEFAULT '';
    CREATE INDEX tracks_popularity ON tracks(popularity DESC);
    CREATE TABLE track_artists (
        track_id TEXT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        artist_id TEXT NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        PRIMARY KEY (track_id, position)
    );
    CREATE INDEX track_artists_artist ON track_artists(artist_id);
    CREATE TABLE audio_features (
        track_id TEXT PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
        danceability REAL NOT NULL,
        energy REAL NOT NULL,
        valence REAL NOT NULL,
        acousticness REAL NOT NULL,
        instrumentalness REAL NOT NULL,
        speechiness REAL NOT NULL,
        liveness REAL NOT NULL,
        loudness REAL NOT NULL,
        tempo REAL NOT NULL,
        key INTEGER NOT NULL,
        mode INTEGER NOT NULL,
        time_signature INTEGER NOT NULL
    );
    CREATE TABLE playlists (
        id TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        public INTEGER NOT NULL DEFAULT 1,
        collaborative INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 1,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX playlists_owner ON playlists(owner_id);
    CREATE TABLE playlist_items (
        playlist_id TEXT NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        track_id TEXT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        added_ms INTEGER NOT NULL,
        added_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
        PRIMARY KEY (playlist_id, position)
    );
    CREATE TABLE saved_tracks (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        track_id TEXT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        added_ms INTEGER NOT NULL,
        PRIMARY KEY (user_id, track_id)
    );
    CREATE INDEX saved_tracks_recent ON saved_tracks(user_id, added_ms DESC);
    CREATE TABLE plays (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        track_id TEXT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        played_ms INTEGER NOT NULL,
        context_uri TEXT
    );
    CREATE INDEX plays_recent ON plays(user_id, played_ms DESC);
    ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'access'
        CHECK (kind IN ('access', 'refresh'));
    -- credits for the tracks already here: one artist per display name
    INSERT OR IGNORE INTO artists (id, name)
        SELECT DISTINCT legato_artist_id(artist), artist FROM tracks;
    INSERT OR IGNORE INTO albums (id, name)
        SELECT album_id, MIN(album) FROM tracks GROUP BY album_id;
    INSERT OR IGNORE INTO album_artists (album_id, artist_id, position)
        SELECT album_id, legato_artist_id(MIN(artist)), 0 FROM tracks GROUP BY album_id;
    INSERT OR IGNORE INTO track_artists (track_id, artist_id, position)
        SELECT id, legato_artist_id(artist), 0 FROM tracks;
    """,
    # 4: catalog search (hub.catalog.search).  Per kind, a document table is the
    # external content of an FTS5 table whose rowid, ``doc``, is
    # (100 - popularity) * 2**32 + the item's rowid: matches come most popular first.
    # ``year`` holds year, decade, century, millennium tokens (y1999 d199 c19 k1), each
    # behind U+E000 (private use: a token character no typed word starts with, so
    # "y*" typed by a listener does not walk every document's year).
    # Names are stored as legato_search_text makes them (folded tokens).
    # ``search_terms`` is the vocabulary that typo correction scans.  The backfill
    # builds the same documents as hub/catalog/search/kinds.py (kept frozen here).
    """
    CREATE TABLE search_track_docs (
        doc INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL, artists TEXT NOT NULL, album TEXT NOT NULL, year TEXT NOT NULL
    );
    CREATE VIRTUAL TABLE search_tracks USING fts5(
        name, artists, album, year, content='search_track_docs', content_rowid='doc',
        tokenize='unicode61 remove_diacritics 2', prefix='1 2 3 4'
    );
    CREATE TABLE search_album_docs (
        doc INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL, artists TEXT NOT NULL, year TEXT NOT NULL
    );
    CREATE VIRTUAL TABLE search_albums USING fts5(
        name, artists, year, content='search_album_docs', content_rowid='doc',
        tokenize='unicode61 remove_diacritics 2', prefix='1 2 3 4'
    );
    CREATE TABLE search_artist_docs (
        doc INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, year TEXT NOT NULL
    );
    CREATE VIRTUAL TABLE search_artists USING fts5(
        name, year, content='search_artist_docs', content_rowid='doc',
        tokenize='unicode61 remove_diacritics 2', prefix='1 2 3 4'
    );
    CREATE TABLE search_playlist_docs (
        doc INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL, description TEXT NOT NULL
    );
    CREATE VIRTUAL TABLE search_playlists USING fts5(
        name, description, content='search_playlist_docs', content_rowid='doc',
        tokenize='unicode61 remove_diacritics 2', prefix='1 2 3 4'
    );
    CREATE VIRTUAL TABLE search_tracks_vocab USING fts5vocab(search_tracks, col);
    CREATE VIRTUAL TABLE search_albums_vocab USING fts5vocab(search_albums, col);
    CREATE VIRTUAL TABLE search_artists_vocab USING fts5vocab(search_artists, col);
    CREATE VIRTUAL TABLE search_playlists_vocab USING fts5vocab(search_playlists, col);
    CREATE TABLE search_terms (term TEXT PRIMARY KEY, docs INTEGER NOT NULL) WITHOUT ROWID;
    -- a deleted item leaves the index with its document
    CREATE TRIGGER search_track_gone AFTER DELETE ON tracks BEGIN
        INSERT INTO search_tracks (search_tracks, rowid, name, artists, album, year)
            SELECT 'delete', doc, name, artists, album, year
            FROM search_track_docs WHERE id = old.id;
        DELETE FROM search_track_docs WHERE id = old.id;
    END;
    CREATE TRIGGER search_album_gone AFTER DELETE ON albums BEGIN
        INSERT INTO search_albums (search_albums, rowid, name, artists, year)
            SELECT 'delete', doc, name, artists, year FROM search_album_docs WHERE id = old.id;
        DELETE FROM search_album_docs WHERE id = old.id;
    END;
    CREATE TRIGGER search_artist_gone AFTER DELETE ON artists BEGIN
        INSERT INTO search_artists (search_artists, rowid, name, year)
            SELECT 'delete', doc, name, year FROM search_artist_docs WHERE id = old.id;
        DELETE FROM search_artist_docs WHERE id = old.id;
    END;
    CREATE TRIGGER search_playlist_gone AFTER DELETE ON playlists BEGIN
        INSERT INTO search_playlists (search_playlists, rowid, name, description)
            SELECT 'delete', doc, name, description FROM search_playlist_docs WHERE id = old.id;
        DELETE FROM search_playlist_docs WHERE id = old.id;
    END;
    -- the catalog already here
    INSERT INTO search_track_docs (doc, id, name, artists, album, year)
        SELECT (100 - t.popularity) * 4294967296 + t.rowid, t.id, legato_search_text(t.name),
            legato_search_text(coalesce((SELECT group_concat(name, ', ') FROM (SELECT a.name
                AS name FROM track_artists c JOIN artists a ON a.id = c.artist_id
                WHERE c.track_id = t.id ORDER BY c.position)), t.artist)),
            legato_search_text(coalesce(al.name, t.album)),
            coalesce(CASE WHEN al.release_year BETWEEN 0 AND 9999 THEN
                '\ue000y' || al.release_year || ' \ue000d' || (al.release_year / 10)
                || ' \ue000c' || (al.release_year / 100)
                || ' \ue000k' || (al.release_year / 1000) ELSE '' END, '')
        FROM tracks t LEFT JOIN albums al ON al.id = t.album_id;
    INSERT INTO search_album_docs (doc, id, name, artists, year)
        SELECT (100 - al.popularity) * 4294967296 + al.rowid, al.id, legato_search_text(al.name),
            legato_search_text(coalesce((SELECT group_concat(name, ', ') FROM (SELECT a.name
                AS name FROM album_artists c JOIN artists a ON a.id = c.artist_id
                WHERE c.album_id = al.id ORDER BY c.position)), '')),
            coalesce(CASE WHEN al.release_year BETWEEN 0 AND 9999 THEN
                '\ue000y' || al.release_year || ' \ue000d' || (al.release_year / 10)
                || ' \ue000c' || (al.release_year / 100)
                || ' \ue000k' || (al.release_year / 1000) ELSE '' END, '')
        FROM albums al;
    INSERT INTO search_artist_docs (doc, id, name, year)
        SELECT (100 - a.popularity) * 4294967296 + a.rowid, a.id, legato_search_text(a.name),
            coalesce((SELECT group_concat('\ue000y' || y || ' \ue000d' || (y / 10)
                || ' \ue000c' || (y / 100) || ' \ue000k' || (y / 1000), ' ')
                FROM (SELECT DISTINCT al.release_year AS y
                FROM album_artists aa JOIN albums al ON al.id = aa.album_id
                WHERE aa.artist_id = a.id AND al.release_year BETWEEN 0 AND 9999)), '')
        FROM artists a;
    INSERT INTO search_playlist_docs (doc, id, name, description)
        SELECT 100 * 4294967296 + p.rowid, p.id, legato_search_text(p.name),
            legato_search_text(p.description) FROM playlists p;
    INSERT INTO search_tracks (search_tracks) VALUES ('rebuild');
    INSERT INTO search_albums (search_albums) VALUES ('rebuild');
    INSERT INTO search_artists (search_artists) VALUES ('rebuild');
    INSERT INTO search_playlists (search_playlists) VALUES ('rebuild');
    INSERT INTO search_terms (term, docs)
        SELECT term, sum(doc) FROM (
            SELECT term, doc FROM search_tracks_vocab WHERE col IN ('name', 'artists', 'album')
            UNION ALL
            SELECT term, doc FROM search_albums_vocab WHERE col IN ('name', 'artists')
            UNION ALL
            SELECT term, doc FROM search_artists_vocab WHERE col = 'name'
            UNION ALL
            SELECT term, doc FROM search_playlists_vocab
        ) GROUP BY term;
    """,
    # 5: typo corrections come from public catalog words only: playlists' names can be
    # private, so their words leave the vocabulary (hub/catalog/search/kinds.py in_vocabulary)
    """
    DELETE FROM search_terms;
    INSERT INTO search_terms (term, docs)
        SELECT term, sum(doc) FROM (
            SELECT term, doc FROM search_tracks_vocab WHERE col IN ('name', 'artists', 'album')
            UNION ALL
            SELECT term, doc FROM search_albums_vocab WHERE col IN ('name', 'artists')
            UNION ALL
            SELECT term, doc FROM search_artists_vocab WHERE col = 'name'
        ) GROUP BY term;
    """,
    # 6: offline downloads and licences (hub.offline).  A speaker's X25519
    # (licences are sealed to it) and Ed25519 (it signs its syncs) public keys, b64url;
    # re-pairing the speaker deletes its row so a fresh install can register new ones.
    # A licence row keeps the signed document it sent, to send it again unchanged; its
    # KEK is derived from the hub's secret, the device, the user and ``epoch`` and is
    # never stored.  ``downloads`` is what listeners asked for (track, album or
    # playlist URIs, expanded when the speaker syncs); ``download_progress`` what the
    # speaker last reported per track.
    """
    CREATE TABLE device_keys (
        device_id TEXT PRIMARY KEY,
        x25519 TEXT NOT NULL,
        ed25519 TEXT NOT NULL,
        registered_ms INTEGER NOT NULL
    );
    CREATE TABLE licences (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL CHECK (epoch >= 0),
        device_x25519 TEXT NOT NULL,
        issued_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        revoked_ms INTEGER,
        signed_json TEXT NOT NULL
    );
    CREATE INDEX licences_device_user ON licences(device_id, user_id, issued_ms);
    CREATE INDEX licences_user ON licences(user_id);
    CREATE TABLE downloads (
        device_id TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        uri TEXT NOT NULL,
        name TEXT NOT NULL,
        requested_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, user_id, uri)
    );
    CREATE INDEX downloads_user ON downloads(user_id);
    CREATE TABLE download_progress (
        device_id TEXT NOT NULL,
        track_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('downloading', 'ready', 'failed')),
        bytes_done INTEGER NOT NULL DEFAULT 0,
        bytes_total INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, track_id)
    );
    """,
    # 7: speakers' playback events (hub.fleet.events), for the dashboard's charts
    # and each speaker's history; pruned after 90 days so the table stays bounded.
    # ``track_id`` is the catalog id ('' when the event names no track); no foreign
    # keys: an event outlives a re-ingested track or a removed speaker.
    """
    CREATE TABLE device_events (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        track_id TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        played_ms INTEGER NOT NULL DEFAULT 0,
        ts_ms INTEGER NOT NULL
    );
    CREATE INDEX device_events_ts ON device_events(ts_ms);
    CREATE INDEX device_events_device ON device_events(device_id, ts_ms);
    """,
    # 8: the hub's own small state across restarts: which speaker is active (the relay
    # decides it only from commands it relayed, so a restart must not forget it).
    """
    CREATE TABLE hub_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 9: the maker's path (hub.fleet.enrolment): one-time enrolment codes, kept as
    # digests only, and each flashed speaker's set-up from "enrolled" to "first boot done".
    """
    CREATE TABLE enrolments (
        code_hash TEXT PRIMARY KEY,
        created_by TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        used_ms INTEGER,
        device_id TEXT
    );
    CREATE TABLE speaker_setups (
        device_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        board TEXT NOT NULL DEFAULT '',
        enrolled_ms INTEGER NOT NULL,
        enrolled_by TEXT NOT NULL,
        first_boot_ms INTEGER
    );
    """,
    # 10: listening that learns (hub.listening, hub.recommend).  ``plays`` is rebuilt so
    # a row can outlive its track or never have had one: imported history keeps the
    # names it came with (``artist_name``, ``track_name``, ``album_name``, ``isrc``)
    # and ``match_key`` (folded primary artist and title) until ingest brings the
    # track; ``track_id`` NULL = not matched.  ``played_ms`` stays the instant the
    # play started; ``ms_played`` how long it played (NULL while a speaker plays it),
    # ``skipped``/``finished`` 0/1 (NULL unknown); ``import_key`` makes an import
    # idempotent.  Per-listener settings (autoplay); measured spectral shape beside
    # the audio features (``measured`` 1 = from the audio at ingest, 0 = catalog
    # data); generated playlists (the Weekly Mix) marked so a regeneration replaces
    # only its own; one row per training run of the recommender.
    """
    CREATE TABLE plays_v10 (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        track_id TEXT REFERENCES tracks(id) ON DELETE SET NULL,
        played_ms INTEGER NOT NULL,
        ms_played INTEGER CHECK (ms_played >= 0),
        skipped INTEGER CHECK (skipped IN (0, 1)),
        finished INTEGER CHECK (finished IN (0, 1)),
        context_uri TEXT,
        device_id TEXT,
        source TEXT NOT NULL DEFAULT 'speaker'
            CHECK (source IN ('speaker', 'spotify', 'listenbrainz')),
        artist_name TEXT NOT NULL DEFAULT '',
        track_name TEXT NOT NULL DEFAULT '',
        album_name TEXT NOT NULL DEFAULT '',
        isrc TEXT,
        match_key TEXT NOT NULL DEFAULT '',
        import_key TEXT UNIQUE
    );
    INSERT INTO plays_v10 (id, user_id, track_id, played_ms, context_uri)
        SELECT id, user_id, track_id, played_ms, context_uri FROM plays;
    DROP TABLE plays;
    ALTER TABLE plays_v10 RENAME TO plays;
    CREATE INDEX plays_recent ON plays(user_id, played_ms DESC);
    CREATE INDEX plays_time ON plays(played_ms);
    CREATE INDEX plays_track ON plays(track_id);
    CREATE INDEX plays_unmatched ON plays(match_key) WHERE track_id IS NULL;
    CREATE TABLE listener_settings (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        autoplay INTEGER NOT NULL DEFAULT 1 CHECK (autoplay IN (0, 1))
    );
    ALTER TABLE audio_features ADD COLUMN spectral_centroid REAL;
    ALTER TABLE audio_features ADD COLUMN spectral_flatness REAL;
    ALTER TABLE audio_features ADD COLUMN spectral_rolloff REAL;
    ALTER TABLE audio_features ADD COLUMN measured INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE playlists ADD COLUMN generated TEXT;
    CREATE UNIQUE INDEX playlists_generated ON playlists(owner_id, generated)
        WHERE generated IS NOT NULL;
    CREATE TABLE recommender_runs (
        id INTEGER PRIMARY KEY,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        trigger TEXT NOT NULL,
        model_path TEXT,
        figures_json TEXT NOT NULL DEFAULT '{}',
        error TEXT
    );
    """,
    # 11: when a listener last cleared their history ("clear my history"): until the
    # recommender trains again, what it learnt of them before is not used.
    """
    ALTER TABLE listener_settings ADD COLUMN history_cleared_ms INTEGER;
    """,
    # 12: signed releases (hub.releases).  ``releases``: each bundle the hub made, its
    # file's size and SHA-256 and the signed manifest; ``rollouts``: one per release,
    # to a share of the fleet (``percent``) or to named speakers (``devices_json``),
    # ``wave`` speakers in flight at once (NULL: the default); ``device_updates``: how
    # far each speaker got with each release, and why it stopped.
    """
    CREATE TABLE releases (
        version TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        manifest_json TEXT NOT NULL,
        notes TEXT NOT NULL DEFAULT '',
        key_id TEXT NOT NULL,
        path TEXT NOT NULL
    );
    CREATE TABLE rollouts (
        version TEXT PRIMARY KEY REFERENCES releases(version) ON DELETE CASCADE,
        percent INTEGER CHECK (percent BETWEEN 1 AND 100),
        devices_json TEXT,
        wave INTEGER CHECK (wave >= 1),
        state TEXT NOT NULL CHECK (state IN ('active', 'halted', 'done')),
        reason TEXT NOT NULL DEFAULT '',
        started_ms INTEGER NOT NULL,
        halted_ms INTEGER,
        CHECK ((percent IS NULL) != (devices_json IS NULL))
    );
    CREATE TABLE device_updates (
        device_id TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('offered', 'downloading', 'installing',
            'trial', 'good', 'rolled_back', 'failed')),
        reason TEXT NOT NULL DEFAULT '',
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, version)
    );
    CREATE INDEX device_updates_version ON device_updates(version, state);
    """,
    # 13: a speaker may report "skipped" (an offer it did not try for its own reasons:
    # no release key, a full disk...); SQLite cannot change a CHECK, so the table is
    # made again with its rows
    """
    CREATE TABLE device_updates_new (
        device_id TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('offered', 'downloading', 'installing',
            'trial', 'good', 'rolled_back', 'failed', 'skipped')),
        reason TEXT NOT NULL DEFAULT '',
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, version)
    );
    INSERT INTO device_updates_new (device_id, version, state, reason, updated_ms)
        SELECT device_id, version, state, reason, updated_ms FROM device_updates;
    DROP TABLE device_updates;
    ALTER TABLE device_updates_new RENAME TO device_updates;
    CREATE INDEX device_updates_version ON device_updates(version, state);
    """,
    # 14: multiroom groups (hub.groups): each group's owner, the key that seals its
    # members' sync datagrams and its leader (kept, so a restarted hub does not move
    # it); a speaker is a member of one group at most, ``position`` keeps the members
    # in the order given (the first online one leads when the leader is gone)
    """
    CREATE TABLE groups (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        key BLOB NOT NULL CHECK (length(key) = 32),
        created_ms INTEGER NOT NULL,
        leader_id TEXT
    );
    CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL UNIQUE,
        position INTEGER NOT NULL,
        PRIMARY KEY (group_id, position)
    );
    """,
]
