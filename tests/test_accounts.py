"""Accounts and tokens: hashing, expiry on an injected clock, revocation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import errors
from hub.accounts import scopes, users
from hub.accounts import tokens as accounts
from hub.errors import AccountError
from hub.server import open_database


def test_password_is_stored_as_argon2_and_checked(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    user = users.add_user(db, "ada", "long enough password")
    with db.reading() as conn:
        stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "long enough password" not in stored
    assert users.authenticate(db, "ada", "long enough password") == user
    assert users.authenticate(db, "ada", "long enough passwore") is None
    assert users.authenticate(db, "nobody", "long enough password") is None


@pytest.mark.parametrize("name", ["", " ada", "a\nb", "x" * 65])
def test_bad_names_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(AccountError):
        users.add_user(open_database(tmp_path), name, "long enough password")


def test_token_expires_and_can_be_revoked(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    user = users.add_user(db, "ada", "long enough password")
    issued = accounts.issue_token(db, user, now=1_000)
    assert accounts.user_for_token(db, issued.access_token, now=1_000 + 1) == user
    expiry = 1_000 + accounts.TOKEN_TTL_MS
    assert accounts.user_for_token(db, issued.access_token, now=expiry - 1) == user
    assert accounts.user_for_token(db, issued.access_token, now=expiry) is None
    fresh = accounts.issue_token(db, user)
    assert accounts.revoke_token(db, fresh.access_token)
    assert accounts.user_for_token(db, fresh.access_token) is None
    with db.reading() as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM tokens")]
    assert fresh.access_token not in stored  # only hashes are kept


def test_newer_schema_is_refused_not_damaged(tmp_path: Path) -> None:
    from hub.context import hub_database
    from hub.errors import DatabaseError

    db = open_database(tmp_path)
    with db.reading() as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(DatabaseError, match="newer than this hub"):
        hub_database(tmp_path / "hub.db").migrate()


def test_data_dir_and_database_are_private(tmp_path: Path) -> None:
    import os

    data = tmp_path / "data"
    open_database(data)
    assert os.stat(data).st_mode & 0o777 == 0o700
    assert os.stat(data / "hub.db").st_mode & 0o777 == 0o600


def test_broker_user_cache_expires_on_its_clock(tmp_path: Path) -> None:
    from hub.fleet import provisioning

    db = open_database(tmp_path)
    now = [100.0]
    cache = provisioning.BrokerUserCache(db, ttl_s=5, clock=lambda: now[0])
    assert cache("den") is None
    provisioning.add_broker_user(db, "den", "speaker")
    assert cache("den") is None  # still the cached answer
    now[0] += 5
    user = cache("den")
    assert user is not None
    assert user.role == "speaker"
    provisioning.add_broker_user(db, "den2", "speaker")
    cache.forget("den2")
    assert cache("den2") is not None


def test_secret_files_are_written_private_even_over_a_planted_temp_file(tmp_path: Path) -> None:
    import os

    from hub.files import write_private

    target = tmp_path / "k.secret"
    planted = tmp_path / ".k.secret.tmp"
    planted.write_text("left over")
    planted.chmod(0o666)
    write_private(target, "s3cret\n")
    assert target.read_text() == "s3cret\n"
    assert os.stat(target).st_mode & 0o777 == 0o600


def test_revoke_all_ends_every_session_of_that_user_only(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    ada = users.add_user(db, "ada", "long enough password")
    bob = users.add_user(db, "bob", "long enough password")
    phone = accounts.issue_token(db, ada, refresh=True)
    laptop = accounts.issue_token(db, ada)
    other = accounts.issue_token(db, bob, refresh=True)
    assert accounts.revoke_all(db, ada.id) == 3
    assert accounts.user_for_token(db, phone.access_token) is None
    assert accounts.user_for_token(db, laptop.access_token) is None
    assert phone.refresh_token is not None
    with pytest.raises(errors.GrantRefused):
        accounts.refresh(db, phone.refresh_token)
    assert accounts.user_for_token(db, other.access_token) == bob


def test_a_family_revocation_touches_no_other_family(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    ada = users.add_user(db, "ada", "long enough password")
    families = [accounts.issue_token(db, ada, refresh=True) for _ in range(20)]
    victim = families[7]
    assert victim.refresh_token is not None
    assert accounts.revoke_token(db, victim.refresh_token)
    alive = [accounts.user_for_token(db, f.access_token) is not None for f in families]
    assert alive == [i != 7 for i in range(20)]


def test_expired_and_unknown_tokens_are_told_apart(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    ada = users.add_user(db, "ada", "long enough password")
    issued = accounts.issue_token(db, ada, scope="user-library-read", now=0)
    session = accounts.access_session(db, issued.access_token, now=1)
    assert session.scopes == {"user-library-read"}
    assert session.expires_ms == accounts.TOKEN_TTL_MS
    with pytest.raises(errors.TokenRejected, match="expired"):
        accounts.access_session(db, issued.access_token, now=accounts.TOKEN_TTL_MS)
    for bogus in ("", "x" * 300, "nope", issued.access_token + "x"):
        with pytest.raises(errors.TokenRejected, match="Invalid access token"):
            accounts.access_session(db, bogus, now=1)


def test_tokens_from_before_families_still_work(tmp_path: Path) -> None:
    import hashlib

    db = open_database(tmp_path)
    ada = users.add_user(db, "ada", "long enough password")
    old = "AbC-dEf_123" * 4  # token_urlsafe's alphabet, no family prefix
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO tokens (token_hash, user_id, scope, expires_ms) VALUES (?, ?, ?, ?)",
            (hashlib.sha256(old.encode()).hexdigest(), ada.id, "player", 10_000),
        )
    session = accounts.access_session(db, old, now=1)
    assert session.user == ada
    assert session.scopes == scopes.ALIASES["player"]
    assert accounts.revoke_token(db, old)
    assert accounts.token_session(db, old, now=1) is None


def test_scope_requests() -> None:
    assert scopes.parse(None) == scopes.parse("  ") == scopes.DEFAULT == scopes.ALL
    assert len(scopes.ALL) == 13
    assert scopes.parse("player user-read-email") == scopes.ALIASES["player"] | {"user-read-email"}
    with pytest.raises(errors.InvalidScope, match="streaming"):
        scopes.parse("user-read-email streaming")
    assert scopes.from_stored("player streaming") == scopes.ALIASES["player"]
    assert scopes.format_scopes({"b", "a"}) == "a b"


def test_issued_tokens_keep_their_secrets_out_of_repr(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    issued = accounts.issue_token(db, users.add_user(db, "ada", "long enough password"))
    assert issued.access_token not in repr(issued)
    assert issued.access_token not in str(issued)


@given(
    asked=st.sets(st.sampled_from(sorted(scopes.ALL)), min_size=1),
    is_admin=st.booleans(),
)
def test_a_token_asked_for_named_scopes_never_carries_admin(
    asked: set[str], is_admin: bool
) -> None:
    granted = scopes.granted(" ".join(sorted(asked)), is_admin=is_admin)
    assert scopes.ADMIN not in granted
    assert granted == asked


def test_only_an_administrator_asking_for_nothing_or_for_it_gets_admin() -> None:
    assert scopes.granted(None, is_admin=True) == scopes.ALL | {scopes.ADMIN}
    assert scopes.granted("", is_admin=False) == scopes.ALL
    assert scopes.granted("legato-admin", is_admin=True) == {scopes.ADMIN}
    with pytest.raises(errors.InvalidScope, match="administrator"):
        scopes.granted("legato-admin user-read-email", is_admin=False)


def test_no_token_starts_like_a_command_line_option(tmp_path: Path) -> None:
    # pasted as `legato-flash --token T`, a token starting with "-" would be an option
    assert all(not accounts.new_family().startswith("-") for _ in range(2000))
    db = open_database(tmp_path)
    user = users.add_user(db, "ann", "correct horse battery")
    for _ in range(50):
        issued = accounts.issue_token(db, user, refresh=True)
        assert not issued.access_token.startswith("-")
        assert issued.refresh_token is not None
        assert not issued.refresh_token.startswith("-")
