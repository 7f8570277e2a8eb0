"""``/api/token``, revocation, scopes, admins and rate limits over real HTTP.

The hub's app runs under uvicorn on loopback; the rate limiter's clock is a fake
moved by the test, and expiry is reached by issuing tokens in the past.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from hub.accounts import scopes, users
from hub.accounts import tokens as accounts
from hub.accounts.throttle import LoginThrottle
from hub.accounts.users import User
from hub.clock import now_ms
from hub.db import Database
from hub.http.app import create_app
from hub.http.deps import AdminDep, limited_user, require_scope
from hub.http.ratelimit import RateLimiter
from hub.server import open_database
from tests.serving import offline_context, serving
from tests.system import child_env

pytestmark = pytest.mark.integration

PASSWORD = "long enough password"
ALL_SCOPES = " ".join(sorted(scopes.ALL))


class FakeClock:
    """Monotonic milliseconds that move only when the test says so."""

    def __init__(self) -> None:
        self.ms = 5_000_000

    def __call__(self) -> int:
        return self.ms


# Stand-ins for the routes the Web API will add, to exercise each dependency; module
# level because FastAPI resolves postponed annotations in the module's globals.
SearchUser = Annotated[User, Depends(limited_user("search"))]
PlaylistWriter = Annotated[
    User, Depends(require_scope(scopes.MODIFY_PUBLIC_PLAYLISTS, scopes.MODIFY_PRIVATE_PLAYLISTS))
]


def probes(app: FastAPI) -> None:
    @app.get("/probe/search")
    async def search(user: SearchUser) -> dict[str, str]:
        return {"user": user.name}

    @app.get("/probe/playlist")
    async def playlist(user: PlaylistWriter) -> dict[str, str]:
        return {"user": user.name}

    @app.get("/probe/admin")
    async def admin(user: AdminDep) -> dict[str, str]:
        return {"admin": user.name}


@dataclass
class Stage:
    url: str
    data: Path
    db: Database
    clock: FakeClock
    ada: User
    state: Any = None

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, headers=headers, trust_env=False)

    def login(self, name: str = "ada", **form: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.post(
                "/api/token",
                data={"grant_type": "password", "username": name, "password": PASSWORD, **form},
            )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def refresh(self, token: str, **form: str) -> httpx.Response:
        with self.client() as c:
            return c.post(
                "/api/token", data={"grant_type": "refresh_token", "refresh_token": token, **form}
            )

    def get(self, path: str, token: str) -> httpx.Response:
        with self.client(Authorization=f"Bearer {token}") as c:
            return c.get(path)


@pytest.fixture
def app_state(stage: Stage) -> Any:
    """The served app's ``state`` (the stage keeps it for tests that swap a part)."""
    return stage.state


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    data = tmp_path / "hub-data"
    db = open_database(data)
    ada = users.add_user(db, "ada", PASSWORD)
    users.add_user(db, "bob", PASSWORD)
    ctx = offline_context(db, data)
    app = create_app(ctx, manage_relay=False)
    clock = FakeClock()
    app.state.rate_limiter = RateLimiter(clock=clock)
    probes(app)
    with serving(app) as url:
        yield Stage(url, data, db, clock, ada, app.state)


def spotify_error(r: httpx.Response, status: int, message: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"error": {"status": status, "message": message}}


def oauth_error(r: httpx.Response, error: str, description: str = "") -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == error
    assert description in body["error_description"]
    assert body["error_description"]


# --- grants ---------------------------------------------------------------------------


def test_password_grant_gives_an_access_and_a_refresh_token(stage: Stage) -> None:
    with stage.client() as c:
        r = c.post(
            "/api/token",
            data={"grant_type": "password", "username": "ada", "password": PASSWORD},
        )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == ALL_SCOPES  # the documented default
    assert stage.get("/v1/me/player/devices", body["access_token"]).json() == {"devices": []}
    with stage.db.reading() as conn:
        rows = conn.execute("SELECT token_hash, kind, expires_ms FROM tokens").fetchall()
    assert sorted(r["kind"] for r in rows) == ["access", "refresh"]
    stored = " ".join(r["token_hash"] for r in rows)
    assert body["access_token"] not in stored
    assert body["refresh_token"] not in stored
    lifetimes = {r["kind"]: r["expires_ms"] - now_ms() for r in rows}
    assert 29 * 86_400_000 < lifetimes["refresh"] <= 30 * 86_400_000


def test_a_refresh_token_is_no_bearer_token_and_vice_versa(stage: Stage) -> None:
    tokens = stage.login()
    spotify_error(
        stage.get("/v1/me/player/devices", tokens["refresh_token"]), 401, "Invalid access token"
    )
    oauth_error(stage.refresh(tokens["access_token"]), "invalid_grant", "Invalid refresh token")


def test_refresh_rotates_and_a_reused_refresh_token_revokes_its_family(stage: Stage) -> None:
    first = stage.login()
    other_family = stage.login()
    r = stage.refresh(first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] not in (first["refresh_token"], None)
    assert second["scope"] == ALL_SCOPES
    assert stage.get("/v1/me/player/devices", second["access_token"]).status_code == 200
    # The rotated token presented again: someone copied it.
    oauth_error(stage.refresh(first["refresh_token"]), "invalid_grant", "already used")
    spotify_error(
        stage.get("/v1/me/player/devices", second["access_token"]), 401, "Invalid access token"
    )
    oauth_error(stage.refresh(second["refresh_token"]), "invalid_grant")
    # Another login of the same user is another family, untouched.
    assert stage.get("/v1/me/player/devices", other_family["access_token"]).status_code == 200
    assert stage.refresh(other_family["refresh_token"]).status_code == 200


def test_refresh_may_narrow_the_scope_never_widen_it(stage: Stage) -> None:
    narrow = stage.login(scope="player")
    assert narrow["scope"].split() == sorted(scopes.ALIASES["player"])
    oauth_error(
        stage.refresh(narrow["refresh_token"], scope=scopes.READ_LIBRARY),
        "invalid_scope",
        "exceeds",
    )
    r = stage.refresh(narrow["refresh_token"], scope=scopes.READ_PLAYBACK)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == scopes.READ_PLAYBACK


def test_client_credentials_in_basic_or_the_form_are_accepted(stage: Stage) -> None:
    tokens = stage.login(client_id="some-app", client_secret="its-secret")
    basic = base64.b64encode(b"some-app:its-secret").decode()
    with stage.client(Authorization=f"Basic {basic}") as c:  # as spotipy sends it
        r = c.post(
            "/api/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"


def test_expired_tokens(stage: Stage) -> None:
    past = now_ms() - accounts.TOKEN_TTL_MS - 1
    issued = accounts.issue_token(stage.db, stage.ada, refresh=True, now=past)
    assert issued.refresh_token is not None
    spotify_error(
        stage.get("/v1/me/player/devices", issued.access_token), 401, "The access token expired"
    )
    assert stage.refresh(issued.refresh_token).status_code == 200  # 30 days: still good
    stale = accounts.issue_token(
        stage.db, stage.ada, refresh=True, now=now_ms() - accounts.REFRESH_TTL_MS
    )
    assert stale.refresh_token is not None
    oauth_error(stage.refresh(stale.refresh_token), "invalid_grant", "expired")


# --- revocation -----------------------------------------------------------------------


def test_revoked_tokens_are_refused(stage: Stage) -> None:
    tokens = stage.login()
    with stage.client() as c:
        revoke = c.post("/api/token/revoke", data={"token": tokens["access_token"]})
        assert revoke.status_code == 200
        assert revoke.headers["cache-control"] == "no-store"
        spotify_error(
            stage.get("/v1/me/player/devices", tokens["access_token"]), 401, "Invalid access token"
        )
        assert stage.refresh(tokens["refresh_token"]).status_code == 200  # only the access one

        family = stage.login()
        revoke = c.post("/api/token/revoke", data={"token": family["refresh_token"]})
        assert revoke.status_code == 200
        oauth_error(stage.refresh(family["refresh_token"]), "invalid_grant")
        # the refresh token took the access tokens of its family along
        assert stage.get("/v1/me/player/devices", family["access_token"]).status_code == 401

        assert c.post("/api/token/revoke", data={"token": "no-such-token"}).status_code == 200
        r = c.post("/api/token/revoke", data={})
        oauth_error(r, "invalid_request", "token is required")


# --- scopes and admins ----------------------------------------------------------------


def test_scopes_are_enforced(stage: Stage) -> None:
    reader = stage.login(scope=scopes.READ_PLAYBACK)["access_token"]
    assert stage.get("/v1/me/player/devices", reader).status_code == 200
    with stage.client(Authorization=f"Bearer {reader}") as c:
        spotify_error(c.put("/v1/me/player/pause"), 403, "Insufficient client scope")
    controller = stage.login(scope=scopes.MODIFY_PLAYBACK)["access_token"]
    spotify_error(stage.get("/v1/me/player/devices", controller), 403, "Insufficient client scope")
    with stage.client(Authorization=f"Bearer {controller}") as c:
        r = c.put("/v1/me/player/pause")  # past the scope check: no speaker to pause
    assert r.status_code == 404, r.text
    # any one of the route's scopes will do
    private = stage.login(scope=scopes.MODIFY_PRIVATE_PLAYLISTS)["access_token"]
    assert stage.get("/probe/playlist", private).json() == {"user": "ada"}
    library = stage.login(scope=scopes.READ_LIBRARY)["access_token"]
    spotify_error(stage.get("/probe/playlist", library), 403, "Insufficient client scope")


def test_unknown_scope_is_invalid_scope(stage: Stage) -> None:
    with stage.client() as c:
        r = c.post(
            "/api/token",
            data={
                "grant_type": "password",
                "username": "ada",
                "password": PASSWORD,
                "scope": f"{scopes.READ_PLAYBACK} ugc-teleport",
            },
        )
    oauth_error(r, "invalid_scope", "ugc-teleport")


def test_only_admins_pass_the_admin_dependency(stage: Stage) -> None:
    password_file = stage.data.parent / "pw"
    password_file.write_text(PASSWORD + "\n")
    created = subprocess.run(
        [
            *(sys.executable, "-m", "hub", "user", "add", "root", "--admin"),
            *("--password-file", str(password_file), "--data", str(stage.data)),
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    admin = stage.login("root")["access_token"]
    assert stage.get("/probe/admin", admin).json() == {"admin": "root"}
    listener = stage.login("ada")["access_token"]
    spotify_error(stage.get("/probe/admin", listener), 403, "This needs an administrator account")


# --- rate limits ----------------------------------------------------------------------


def test_the_31st_search_in_30_s_waits_for_retry_after(stage: Stage) -> None:
    ada = stage.login("ada")["access_token"]
    bob = stage.login("bob")["access_token"]
    with stage.client(Authorization=f"Bearer {ada}") as c:
        for _ in range(30):
            assert c.get("/probe/search").status_code == 200
            stage.clock.ms += 500  # 30 requests over 15 s
        r = c.get("/probe/search")
        spotify_error(r, 429, "API rate limit exceeded")
        assert r.headers["retry-after"] == "15"  # when the first of the 30 leaves the window
        assert stage.get("/probe/search", bob).status_code == 200  # per user
        stage.clock.ms += 14_999
        assert c.get("/probe/search").status_code == 429
        stage.clock.ms += 1
        assert c.get("/probe/search").status_code == 200


def test_player_routes_count_against_the_player_limit(stage: Stage) -> None:
    token = stage.login()["access_token"]
    with stage.client(Authorization=f"Bearer {token}") as c:
        for _ in range(50):
            assert c.get("/v1/me/player/devices").status_code == 200
        r = c.put("/v1/me/player/pause")
        spotify_error(r, 429, "API rate limit exceeded")
        assert r.headers["retry-after"] == "30"
        assert c.get("/probe/search").status_code == 200  # another category
        stage.clock.ms += 30_000
        assert c.get("/v1/me/player/devices").status_code == 200


def test_web_api_routes_need_their_scopes_and_count_in_their_category(stage: Stage) -> None:
    """Playlists: playlist-modify scopes and the playlist-changes limit (25 per 30 s);
    saved tracks: the library scopes; the profile: only a valid token."""
    narrow = stage.login(scope="user-library-read")["access_token"]
    with stage.client(Authorization=f"Bearer {narrow}") as c:
        assert c.get("/v1/me").json()["id"] == "ada"
        assert c.get("/v1/me/tracks").status_code == 200
        spotify_error(
            c.post("/v1/me/playlists", json={"name": "x"}), 403, "Insufficient client scope"
        )
        spotify_error(c.put("/v1/me/tracks?ids=" + "0" * 22), 403, "Insufficient client scope")
    token = stage.login()["access_token"]
    with stage.client(Authorization=f"Bearer {token}") as c:
        for n in range(25):
            assert c.post("/v1/me/playlists", json={"name": f"list {n}"}).status_code == 201
        r = c.post("/v1/me/playlists", json={"name": "one too many"})
        spotify_error(r, 429, "API rate limit exceeded")
        assert int(r.headers["retry-after"]) == 30
        assert c.get("/v1/me/playlists?limit=50").json()["total"] == 25  # nothing half-made
        stage.clock.ms += 30_000
        assert c.post("/v1/me/playlists", json={"name": "later"}).status_code == 201


# --- the 4xx a client can meet --------------------------------------------------------


def test_every_refusal_says_why(stage: Stage) -> None:
    with stage.client() as c:
        r = c.get("/v1/me/player/devices")
        spotify_error(r, 401, "No token provided")
        assert r.headers["www-authenticate"] == "Bearer"
        spotify_error(
            c.get("/v1/me/player", headers={"Authorization": "Bearer nope"}),
            401,
            "Invalid access token",
        )
        oauth_error(c.post("/api/token", data={}), "invalid_request", "grant_type is required")
        oauth_error(
            c.post("/api/token", data={"grant_type": "client_credentials"}),
            "unsupported_grant_type",
            "password or refresh_token",
        )
        oauth_error(
            c.post("/api/token", data={"grant_type": "password", "username": "ada"}),
            "invalid_request",
            "username and password",
        )
        oauth_error(
            c.post(
                "/api/token",
                data={"grant_type": "password", "username": "ada", "password": "wrong one"},
            ),
            "invalid_grant",
            "Invalid username or password",
        )
        oauth_error(
            c.post("/api/token", data={"grant_type": "refresh_token"}),
            "invalid_request",
            "refresh_token is required",
        )


def test_openapi_describes_the_token_endpoint_and_scopes(stage: Stage) -> None:
    with stage.client() as c:
        schema = c.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    flow = scheme["flows"]["password"]
    assert flow["tokenUrl"] == "/api/token"
    assert set(flow["scopes"]) == scopes.KNOWN
    devices = schema["paths"]["/v1/me/player/devices"]["get"]
    assert devices["security"] == [{"OAuth2PasswordBearer": []}]


# --- what the review of the Web API found -----------------------------------------------


def test_public_and_private_playlists_need_their_own_modify_scope(stage: Stage) -> None:
    public_only = stage.login(scope="playlist-modify-public")["access_token"]
    with stage.client(Authorization=f"Bearer {public_only}") as c:
        assert c.post("/v1/me/playlists", json={"name": "open"}).status_code == 201
        r = c.post("/v1/me/playlists", json={"name": "hidden", "public": False})
        assert r.status_code == 403
        assert "playlist-modify-private" in r.json()["error"]["message"]


def test_a_collaborative_playlist_takes_additions_but_only_its_owner_removes(
    stage: Stage,
) -> None:
    from tests.catalog_fixtures import populate

    ids = populate(stage.db)
    ada, bob = stage.login()["access_token"], stage.login("bob")["access_token"]
    with stage.client(Authorization=f"Bearer {ada}") as c:
        created = c.post(
            "/v1/me/playlists", json={"name": "shared", "public": False, "collaborative": True}
        ).json()
    pid = created["id"]
    uri = f"spotify:track:{ids['Crème']}"
    with stage.client(Authorization=f"Bearer {bob}") as c:
        assert c.post(f"/v1/playlists/{pid}/tracks", json={"uris": [uri]}).status_code == 201
        r = c.request("DELETE", f"/v1/playlists/{pid}/tracks", json={"tracks": [{"uri": uri}]})
        assert r.status_code == 403
        assert c.put(f"/v1/playlists/{pid}/tracks", json={"uris": []}).status_code == 403
    with stage.client(Authorization=f"Bearer {ada}") as c:
        assert c.get(f"/v1/playlists/{pid}/tracks").json()["total"] == 1


def test_hostile_bodies_and_cursors_are_plain_400s(stage: Stage) -> None:
    token = stage.login()["access_token"]
    with stage.client(Authorization=f"Bearer {token}") as c:
        deep = "[" * 150_000 + "]" * 150_000
        r = c.post("/v1/me/playlists", content=deep, headers={"content-type": "application/json"})
        spotify_error(r, 400, "The request body is over 256 KiB")
        r = c.post("/v1/me/playlists", content="[" * 50_000 + "]" * 50_000)
        spotify_error(r, 400, "Malformed JSON body")
        r = c.get("/v1/me/player/recently-played", params={"before": "9" * 25})
        assert r.status_code == 400
        assert r.json()["error"]["message"].startswith("Invalid request")


def _guess(url: str, name: str, password: str, address: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, trust_env=False, timeout=10) as c:
        form = {"grant_type": "password", "username": name, "password": password}
        return c.post(f"{url}/api/token", data=form)


def test_password_guessing_is_slowed_per_account_and_address_never_locked_out(
    stage: Stage, app_state: Any
) -> None:
    app_state.login_throttle = LoginThrottle(stage.clock)  # time moves when the test says
    for _ in range(3):  # typos cost nothing
        assert _guess(stage.url, "bob", "x").status_code == 400
    slowed = _guess(stage.url, "bob", "x")
    assert slowed.status_code == 429
    assert slowed.json()["error"] == "slow_down"
    assert int(slowed.headers["retry-after"]) == 1
    # the owner, from another address, is not locked out by someone else's guesses
    assert _guess(stage.url, "bob", PASSWORD, address="127.0.0.2").status_code == 200
    # the guesser's own pair waits longer after each further failure
    stage.clock.ms += 1000
    assert _guess(stage.url, "bob", "x").status_code == 400
    assert int(_guess(stage.url, "bob", "x").headers["retry-after"]) == 2
    stage.clock.ms += 2000
    assert _guess(stage.url, "bob", PASSWORD).status_code == 200  # then a success forgets it
    assert _guess(stage.url, "bob", "x").status_code == 400


def test_login_is_throttled_with_rate_limits_off(tmp_path: Path) -> None:
    data = tmp_path / "hub-data"
    db = open_database(data)
    users.add_user(db, "bob", PASSWORD)
    app = create_app(offline_context(db, data), manage_relay=False, rate_limits=None)
    with serving(app) as url:
        codes = [_guess(url, "bob", "x").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_search_shows_ones_private_playlists_only_with_the_scope_to_read_them(
    stage: Stage,
) -> None:
    full = stage.login()["access_token"]
    narrow = stage.login(scope="user-library-read")["access_token"]
    with stage.client(Authorization=f"Bearer {full}") as c:
        made = c.post("/v1/me/playlists", json={"name": "Quietude", "public": False})
        assert made.status_code == 201
        found = c.get("/v1/search", params={"q": "quietude", "type": "playlist"}).json()
        assert [p["name"] for p in found["playlists"]["items"]] == ["Quietude"]
    with stage.client(Authorization=f"Bearer {narrow}") as c:
        found = c.get("/v1/search", params={"q": "quietude", "type": "playlist"}).json()
        assert found["playlists"]["total"] == 0
