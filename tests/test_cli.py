"""The console scripts as a user meets them: --help, admin commands, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from device import config as speaker_config
from hub.accounts import users
from hub.server import open_database
from tests.system import child_env

BIN = Path(sys.executable).parent


def run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        check=False,
        **kw,  # type: ignore[call-overload]
    )
    return result


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("legato-hub", ["up", "serve", "user", "device", "--data"]),
        ("legato-speaker", ["--config", "--hub", "--sink", "--engine", "--quality", "--cache"]),
        (
            "legato-flash",
            [
                "IMAGE",
                "--hub",
                "--token",
                "--enrol",
                "--name",
                "--board",
                "--wifi-ssid",
                "--wifi-password-file",
                "--wifi-country",
                "--hostname",
                "--ssh-key",
                "--write",
                "--dry-run",
                "--yes",
                "--list-boards",
                "--hub-fingerprint",
            ],
        ),
    ],
)
def test_help_names_the_options(script: str, expect: list[str]) -> None:
    out = run(str(BIN / script), "--help")
    assert out.returncode == 0
    help_text = out.stdout
    if script == "legato-hub":
        help_text += run(str(BIN / script), "up", "--help").stdout
    for word in expect:
        assert word in help_text, word


def test_user_add_then_token(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    out = run(
        str(BIN / "legato-hub"),
        "user",
        "add",
        "ada",
        "--password-file",
        str(pw),
        "--data",
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    assert "created user 'ada'" in out.stdout
    db = open_database(tmp_path)
    assert users.authenticate(db, "ada", "correct horse battery") is not None
    assert users.authenticate(db, "ada", "wrong") is None
    again = run(
        str(BIN / "legato-hub"),
        "user",
        "add",
        "ada",
        "--password-file",
        str(pw),
        "--data",
        str(tmp_path),
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr
    short = tmp_path / "short"
    short.write_text("abc")
    out = run(
        str(BIN / "legato-hub"),
        "user",
        "add",
        "bob",
        "--password-file",
        str(short),
        "--data",
        str(tmp_path),
    )
    assert out.returncode == 2
    assert "password must be" in out.stderr


def test_user_add_without_a_terminal_asks_for_a_file(tmp_path: Path) -> None:
    out = run(
        str(BIN / "legato-hub"),
        "user",
        "add",
        "eve",
        "--data",
        str(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert "--password-file" in out.stderr


def test_device_add_writes_a_config_the_speaker_accepts(tmp_path: Path) -> None:
    out_file = tmp_path / "den.toml"
    out = run(
        str(BIN / "legato-hub"),
        "device",
        "add",
        "den",
        "--name",
        "Den",
        "--out",
        str(out_file),
        "--data",
        str(tmp_path / "d"),
    )
    assert out.returncode == 0, out.stderr
    cfg = speaker_config.load(out_file)
    assert (cfg.id, cfg.name) == ("den", "Den")
    assert cfg.password
    assert cfg.password not in out.stdout  # the secret is never printed
    assert os.stat(tmp_path / "d" / "keys").st_mode & 0o777 == 0o700
    bad = run(
        str(BIN / "legato-hub"),
        "device",
        "add",
        "no/slash",
        "--out",
        str(tmp_path / "x.toml"),
        "--data",
        str(tmp_path / "d"),
    )
    assert bad.returncode == 2
    assert "device id" in bad.stderr


def test_broker_config_for_an_external_mosquitto(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run(
        str(BIN / "legato-hub"),
        "device",
        "add",
        "den",
        "--out",
        str(tmp_path / "den.toml"),
        "--data",
        str(data),
    )
    out = run(
        str(BIN / "legato-hub"),
        "broker-config",
        "--out",
        str(tmp_path / "mq"),
        "--port",
        "18999",
        "--data",
        str(data),
    )
    assert out.returncode == 0, out.stderr
    acl = (tmp_path / "mq" / "acl").read_text()
    assert "user den" in acl
    assert "legato/v1/device/den/cmd" in acl
    assert os.stat(tmp_path / "mq" / "passwd").st_mode & 0o777 == 0o600


def test_speaker_with_a_bad_config_says_why(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[audio]\nengine = "vinyl"\n')
    out = run(str(BIN / "legato-speaker"), "--config", str(cfg))
    assert out.returncode == 2
    assert "audio.engine must be one of" in out.stderr
    assert "Traceback" not in out.stderr
    out = run(str(BIN / "legato-speaker"), "--engine", "native", "--quality", "loud")
    assert out.returncode == 2
    assert "invalid choice: 'loud'" in out.stderr


def test_flash_without_an_image_says_what_is_missing() -> None:
    flash = run(str(BIN / "legato-flash"))
    assert flash.returncode == 2
    assert "missing IMAGE, --hub, --name" in flash.stderr


def test_bad_flags_are_refused_before_anything_starts(tmp_path: Path) -> None:
    out = run(str(BIN / "legato-hub"), "serve", "--port", "70000", "--data", str(tmp_path))
    assert out.returncode == 2
    assert "70000 is not a port (1-65535)" in out.stderr
    out = run(str(BIN / "legato-hub"), "serve", "--command-timeout", "-1", "--data", str(tmp_path))
    assert out.returncode == 2
    assert "between 0 and 600 seconds" in out.stderr
    assert "Traceback" not in out.stderr
