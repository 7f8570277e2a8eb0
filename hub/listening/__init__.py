"""Listening history beyond the speaker's own reports: imports of the exports listeners
bring (Spotify's extended streaming history, ListenBrainz), matching them to the
catalog, top tracks and artists over time ranges, retention and per-listener settings."""
