"""OAuth scopes: Spotify's names, because clients written for Spotify ask for them.

A token carries a set of scopes; a route names the scopes any one of which lets it
through.  The catalog (search, tracks, albums, artists, recommendations) needs no
scope, only a valid token, as on Spotify.  Pure values only: no HTTP here.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.errors import InvalidScope

READ_PLAYBACK = "user-read-playback-state"
MODIFY_PLAYBACK = "user-modify-playback-state"
READ_CURRENTLY_PLAYING = "user-read-currently-playing"
READ_PLAYLISTS = "playlist-read-private"
MODIFY_PUBLIC_PLAYLISTS = "playlist-modify-public"
MODIFY_PRIVATE_PLAYLISTS = "playlist-modify-private"
READ_LIBRARY = "user-library-read"
MODIFY_LIBRARY = "user-library-modify"
READ_RECENTLY_PLAYED = "user-read-recently-played"
READ_TOP = "user-top-read"
READ_PRIVATE = "user-read-private"
READ_EMAIL = "user-read-email"
#: Legato's own: erasing the listener's history.  Not a Spotify scope, so an app that
#: asks for Spotify's scopes to steer playback never gets it; the hub's own clients
#: (which ask for nothing) do.
MODIFY_HISTORY = "legato-history-modify"
#: Legato's own: the dashboard and ``/api/admin/*``.  Only an administrator's token
#: carries it, and only when the token asked for no scope or named it.
ADMIN = "legato-admin"

#: Every scope the hub knows, with what it grants (shown in ``/openapi.json``).
DESCRIPTIONS: dict[str, str] = {
    READ_PLAYBACK: "See your speakers and what they are playing",
    MODIFY_PLAYBACK: "Control playback on your speakers",
    READ_CURRENTLY_PLAYING: "See the track playing now",
    READ_PLAYLISTS: "Read your playlists",
    MODIFY_PUBLIC_PLAYLISTS: "Create and change your public playlists",
    MODIFY_PRIVATE_PLAYLISTS: "Create and change your private playlists",
    READ_LIBRARY: "Read your saved tracks",
    MODIFY_LIBRARY: "Save and remove tracks",
    READ_RECENTLY_PLAYED: "See what you played recently",
    READ_TOP: "See your top artists and tracks",
    READ_PRIVATE: "Read your account details",
    READ_EMAIL: "Read your e-mail address",
    MODIFY_HISTORY: "Clear your listening history",
}
#: Every listener scope (Spotify's names).
ALL: frozenset[str] = frozenset(DESCRIPTIONS)
#: Every scope a token may carry: the listener's and :data:`ADMIN`.
KNOWN: frozenset[str] = ALL | {ADMIN}
#: ``/openapi.json``'s list: what each known scope grants.
KNOWN_DESCRIPTIONS: dict[str, str] = {
    **DESCRIPTIONS,
    ADMIN: "Administer the hub: users, licences, catalog ingest (administrators only)",
}

#: What a token gets when its request names no scope: everything a listener may do,
#: because the hub's own clients (the remote, the CLI's curl line) ask for nothing.
#: An administrator's such token also gets :data:`ADMIN` (see :func:`granted`).
DEFAULT: frozenset[str] = ALL

#: Legacy names still accepted in requests and in stored tokens.
ALIASES: dict[str, frozenset[str]] = {
    "player": frozenset({READ_PLAYBACK, MODIFY_PLAYBACK, READ_CURRENTLY_PLAYING}),
}

MAX_SCOPE_CHARS = 2048


def parse(requested: str | None) -> frozenset[str]:
    """The scopes a token request asks for; an empty request means :data:`DEFAULT`."""
    if requested is None or not requested.strip():
        return DEFAULT
    if len(requested) > MAX_SCOPE_CHARS:
        raise InvalidScope("The requested scope is too long")
    granted: set[str] = set()
    for name in requested.split():
        if name in KNOWN:
            granted.add(name)
        elif name in ALIASES:
            granted |= ALIASES[name]
        else:
            raise InvalidScope(f"Unknown scope {name[:64]!r}")
    return frozenset(granted)


def granted(requested: str | None, *, is_admin: bool) -> frozenset[str]:
    """What a token request gets: :func:`parse`'s scopes, with :data:`ADMIN` for an
    administrator who asked for no scope; a listener naming :data:`ADMIN` is refused,
    and a token asked for narrower scopes never carries it."""
    scopes = parse(requested)
    if ADMIN in scopes and not is_admin:
        raise InvalidScope(f"{ADMIN} is for administrator accounts")
    asked_nothing = requested is None or not requested.strip()
    return scopes | {ADMIN} if asked_nothing and is_admin else scopes


def from_stored(stored: str) -> frozenset[str]:
    """The scopes of a stored token, leniently: a name no longer known grants nothing."""
    granted: set[str] = set()
    for name in stored.split():
        if name in KNOWN:
            granted.add(name)
        else:
            granted |= ALIASES.get(name, frozenset())
    return frozenset(granted)


def format_scopes(scopes: Iterable[str]) -> str:
    """Space-separated, sorted: the form OAuth responses and the database use."""
    return " ".join(sorted(scopes))
