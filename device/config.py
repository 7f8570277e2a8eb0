"""The speaker's configuration: one TOML file, validated in one place.

```toml
[speaker]
id = "kitchen-1"        # broker user name and topic level; made up once if absent
                        # and kept in $LEGATO_SPEAKER_STATE (default ~/.local/state/legato-speaker)
name = "Kitchen"
model = "legato-pi"
board = "pi-iqaudio-digiamp-plus"  # a profile in hardware/boards/ (legato-flash --list-boards):
                        # its ALSA device and mixer are the audio.sink and audio.mixer
                        # used when those are not set, its GPIO pins the controls' own
http_port = 0           # /info and the local control WebSocket; 0 = any free port
http_host = "0.0.0.0"
local_token_file = "speaker.local-token"  # 0600; what a phone needs for local control
                        # (from the hub at pairing); absent: the speaker makes one in
                        # $LEGATO_SPEAKER_STATE/<id>/local-token

[hub]
url = "https://127.0.0.1:8443"   # empty: find the hub over mDNS (its HTTPS port)
broker = "mqtts://127.0.0.1:8883" # empty: ask the hub (or its mDNS record)
ca_file = "hub-ca.pem"           # the hub's CA, pinned: no secret goes to a hub it did
                                 # not sign; without it the speaker pairs with no hub it
                                 # finds, and plain http:// and mqtt:// only as written here

[broker]
username = "kitchen-1"
password_file = "broker.secret" # relative to this file; mode 0600

[audio]
engine = "native"       # native | mpv | clock (silence on a clock; no audio fetched)
#sink = "null"          # alsa[:PCM] | file:PATH | fifo:PATH | null; unset: board PCM, else null
quality = "auto"        # auto | low | normal | high | very_high (a level pins it)
sample_rate = 44100     # the sink's rate; other rates are resampled (soxr); one the board plays
normalisation = "track" # track | album | off: loudness to target_lufs, with a limiter
target_lufs = -14.0
crossfade_s = 0         # 0-12; never between consecutive tracks of one album
#mixer = ""             # ALSA hardware mixer control, "" = software volume; unset: the
                        # board's, when the sink plays on the board's card

[offline]
dir = ""                # the encrypted cache; default $LEGATO_SPEAKER_STATE/<id>/cache
keys_dir = ""           # the speaker's own keys (0600); default .../<id>/keys
stream_cache_mb = 1024  # what played is kept (encrypted) up to this size; 0 = off
quality = "high"        # downloads: low | normal | high | very_high

[controls]              # buttons, knob and status LED on the board's GPIO pins:
volume_step = 2         # see hardware/controls/settings.py for every key
[controls.pins]         # control -> BCM GPIO over the board's [pins]; "none" removes one
[controls.long]         # button -> action of a long press (press: [controls.press])
next = "next_album"

[panel]                 # a front panel on a microcontroller (hardware/mcu/)
port = ""               # its serial port, e.g. "/dev/ttyACM0"; "" = none
baud = 115200

[sync]                  # multiroom: the UDP socket a group's members keep time and plan over
port = 0                # 0 = any free port (the hub learns it from the speaker's status)
bind = ""               # "" = all interfaces; else one local address, e.g. "192.168.1.20"
advertise = ""          # "host:port" the other members reach this socket at, when not the
                        # address it reaches the broker from (NAT, a relay, a port forward)

[updates]               # releases from the hub (device/updates/); off unless this speaker
                        # runs from a slot <root>/releases/<version>/
release_key = "ed25519:..."  # the hub operator's release key, pinned; "" = refuses every bundle
check_interval_s = 600  # how often to ask the hub for an offered release (+-10 %); 0 = never
trial_deadline_s = 120  # 1-3600: a release in trial must reach the hub within this, or it
                        # rolls back
grace_s = 30            # 0-3600: ... and have been able to play this long before it is good
root = "/opt/legato"    # the release slots
state_dir = ""          # the speaker's update state (verdict, downloads); default
                        # /var/lib/legato/update when root is /opt/legato, else <root>/state
```

Command-line flags override the file.  A ``--sink`` off the board's card drops the
board's mixer too (software volume), unless ``audio.mixer`` was set in the file.
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import os
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connect_protocol.topics import is_valid_device_id
from device.errors import DeviceError
from device.sync.membership import MembershipError, split_addr
from device.updates.settings import UpdateSettings, from_table
from hardware.board_profiles import BoardProfile, load_board, pcm_card
from hardware.controls.settings import ControlSettings, controls_from
from hardware.errors import BoardError, ControlsError

ENGINES = ("clock", "native", "mpv")
QUALITIES = ("auto", "low", "normal", "high", "very_high")
NORMALISATIONS = ("track", "album", "off")


def _installed_version() -> str:
    """The release this speaker runs: its wheel's version, what the hub rolls out."""
    try:
        return importlib.metadata.version("legato")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


FIRMWARE_VERSION = _installed_version()
PANEL_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


class ConfigError(DeviceError):
    """The configuration is unusable; the message says which key and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerConfig:
    id: str
    name: str
    model: str = "legato-pi"
    fw: str = FIRMWARE_VERSION
    http_host: str = "0.0.0.0"
    http_port: int = 0
    hub_url: str = ""
    broker_url: str = ""
    hub_ca: str = field(default="", repr=False)  # the pinned CA (PEM); "" when none
    local_token: str = field(default="", repr=False)  # for /control and /offline
    username: str = ""
    password: str = field(default="", repr=False)
    engine: str = "native"
    sink: str = "null"
    quality: str = "auto"
    sample_rate: int = 44100
    normalisation: str = "track"
    target_lufs: float = -14.0
    crossfade_s: float = 0.0
    mixer: str = ""
    # The board profile ``speaker.board`` names, and whether ``mixer`` came from it
    # (a board's mixer follows its card: see ``board_mixer``).
    board: BoardProfile | None = None
    mixer_from_board: bool = field(default=False, repr=False)
    cache_dir: Path | None = None
    keys_dir: Path | None = None
    stream_cache_mb: int = 1024
    download_quality: str = "high"
    controls: ControlSettings = field(default_factory=ControlSettings)
    panel_port: str = ""  # the front panel's serial port; "" = no panel
    panel_baud: int = 115200
    updates: UpdateSettings = field(default_factory=UpdateSettings)
    sync_port: int = 0
    sync_bind: str = ""
    sync_advertise: str = ""

    @property
    def pins(self) -> Mapping[str, int]:
        """Control name -> BCM GPIO: the board's pins with ``[controls.pins]`` over them."""
        return self.controls.pins

    def offline_dirs(self) -> tuple[Path, Path]:
        """Where the cache and the keys live (apart: a copied cache carries no keys)."""
        base = default_state_dir() / self.id
        return self.cache_dir or base / "cache", self.keys_dir or base / "keys"

    def validated(self) -> SpeakerConfig:
        if not is_valid_device_id(self.id):
            raise ConfigError(f"speaker.id {self.id!r} must be 1-64 letters, digits, '-' or '_'")
        if not self.name.strip() or len(self.name) > 64:
            raise ConfigError("speaker.name must be 1-64 characters")
        if not 0 <= self.http_port <= 65535:
            raise ConfigError(f"speaker.http_port {self.http_port} is not a port (0-65535)")
        if self.engine not in ENGINES:
            raise ConfigError(f"audio.engine must be one of {', '.join(ENGINES)}")
        if self.quality not in QUALITIES:
            raise ConfigError(f"audio.quality must be one of {', '.join(QUALITIES)}")
        if not (self.sink in ("null", "alsa") or self.sink.startswith(("alsa:", "file:", "fifo:"))):
            raise ConfigError("audio.sink must be alsa[:PCM], file:PATH, fifo:PATH or null")
        if self.sample_rate not in (44100, 48000, 88200, 96000):
            raise ConfigError("audio.sample_rate must be 44100, 48000, 88200 or 96000")
        if self.board is not None and self.sample_rate not in self.board.sample_rates:
            rates = ", ".join(str(r) for r in self.board.sample_rates)
            raise ConfigError(
                f"audio.sample_rate {self.sample_rate} is not a rate board "
                f"{self.board.key!r} plays; use one of {rates}"
            )
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"audio.normalisation must be one of {', '.join(NORMALISATIONS)}")
        if not -30.0 <= self.target_lufs <= -5.0:
            raise ConfigError("audio.target_lufs must be between -30 and -5")
        if self.download_quality not in QUALITIES[1:]:
            raise ConfigError(f"offline.quality must be one of {', '.join(QUALITIES[1:])}")
        if not 0 <= self.stream_cache_mb <= 1_000_000:
            raise ConfigError("offline.stream_cache_mb must be between 0 and 1000000")
        if not 0 <= self.crossfade_s <= 12:
            raise ConfigError("audio.crossfade_s must be between 0 and 12 seconds")
        self._validate_sync()
        if self.panel_baud not in PANEL_BAUDS:
            raise ConfigError(f"panel.baud must be one of {', '.join(map(str, PANEL_BAUDS))}")
        return self

    def _validate_sync(self) -> None:
        if not 0 <= self.sync_port <= 65535:
            raise ConfigError(f"sync.port {self.sync_port} is not a port (0-65535)")
        if self.sync_bind:
            try:
                ipaddress.ip_address(self.sync_bind)
            except ValueError:
                raise ConfigError(f"sync.bind {self.sync_bind!r} must be an IP address") from None
        if self.sync_advertise:
            try:
                split_addr(self.sync_advertise, "sync.advertise")
            except MembershipError as exc:
                raise ConfigError(str(exc)) from None


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _get(table: dict[str, Any], section: str, key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{section}.{key} must be a {kind.__name__}")
    return value


def read_secret(path: Path) -> str:
    """A secret from a file, refusing files other users can read.  Its group may read
    it only when root owns it (a flashed Pi's /etc/legato: root:legato 0640, so the
    speaker reads its secrets but cannot change its config)."""
    try:
        info = path.stat()
        mode = info.st_mode
        shared = stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP
        if info.st_uid != 0:
            shared |= stat.S_IRGRP
        if mode & shared:
            raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror}") from exc


def _beside(name: str, config_path: Path | None) -> Path:
    """A file the config names: relative names are relative to the config."""
    found = Path(name)
    if not found.is_absolute() and config_path is not None:
        found = config_path.parent / found
    return found


def _read_ca(name: str, config_path: Path | None) -> str:
    """The pinned hub CA named by ``hub.ca_file`` (relative to the config), as PEM."""
    if not name:
        return ""
    ca_path = _beside(name, config_path)
    try:
        pem = ca_path.read_text()
    except OSError as exc:
        raise ConfigError(f"hub.ca_file: cannot read {ca_path}: {exc.strerror}") from exc
    if "BEGIN CERTIFICATE" not in pem:
        raise ConfigError(f"hub.ca_file: {ca_path} is not a PEM certificate")
    return pem


def load_speaker_board(key: str) -> BoardProfile | None:
    """The profile ``speaker.board`` names ("" = none); unknown or broken is a ConfigError."""
    if not key:
        return None
    try:
        return load_board(key)
    except BoardError as exc:
        raise ConfigError(f"speaker.board: {exc}") from exc


def board_sink(board: BoardProfile | None) -> str:
    """The sink a board plays through by default (``null`` without a board)."""
    return f"alsa:{board.alsa_pcm}" if board is not None else "null"


def board_mixer(board: BoardProfile | None, sink: str) -> str:
    """The board's mixer when ``sink`` plays on the board's own card, else "" (software).

    A mixer control belongs to one card: applied to a sink elsewhere it would set
    the wrong device's volume or fail to open, where software volume always works.
    """
    if board is None or not sink.startswith("alsa:"):
        return ""
    if sink == board_sink(board):  # also for a maker's profile on e.g. "default"
        return board.mixer
    card = pcm_card(sink.removeprefix("alsa:"))
    return board.mixer if card and card == pcm_card(board.alsa_pcm) else ""


def default_state_dir() -> Path:
    if os.environ.get("LEGATO_SPEAKER_STATE"):
        return Path(os.environ["LEGATO_SPEAKER_STATE"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "legato-speaker"


def stable_device_id(state_dir: Path) -> str:
    """The id this speaker made up the first time it ran without one, kept for good.

    A speaker's id is its broker login and the key of everything the hub knows
    of it, so it must survive restarts.
    """
    path = state_dir / "device-id"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if is_valid_device_id(existing):
        return existing
    new_id = f"speaker-{secrets.token_hex(4)}"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(new_id + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot keep the speaker id in {path}: {exc.strerror}") from exc
    return new_id


def load(path: Path | None) -> SpeakerConfig:
    """Read ``path`` (or defaults when ``None``); raise ``ConfigError`` with the key at fault."""
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    speaker, hub = _section(doc, "speaker"), _section(doc, "hub")
    broker, audio = _section(doc, "broker"), _section(doc, "audio")
    offline = _section(doc, "offline")
    panel, sync = _section(doc, "panel"), _section(doc, "sync")
    device_id = _get(speaker, "speaker", "id", str, "") or stable_device_id(default_state_dir())
    password = _get(broker, "broker", "password", str, "")
    password_file = _get(broker, "broker", "password_file", str, "")
    if password_file:
        password = read_secret(_beside(password_file, path))
    hub_ca = _read_ca(_get(hub, "hub", "ca_file", str, ""), path)
    token_file = _get(speaker, "speaker", "local_token_file", str, "")
    local_token = read_secret(_beside(token_file, path)) if token_file else ""
    cache = _get(offline, "offline", "dir", str, "") or _get(audio, "audio", "cache_dir", str, "")
    keys = _get(offline, "offline", "keys_dir", str, "")
    board = load_speaker_board(_get(speaker, "speaker", "board", str, ""))
    sink = _get(audio, "audio", "sink", str, board_sink(board))
    try:
        controls = controls_from(_section(doc, "controls"), board)
    except ControlsError as exc:
        raise ConfigError(str(exc)) from exc
    try:
        updates = from_table(_section(doc, "updates"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return SpeakerConfig(
        id=device_id,
        name=_get(speaker, "speaker", "name", str, "") or f"Legato {device_id[-4:]}",
        model=_get(speaker, "speaker", "model", str, "legato-pi"),
        http_host=_get(speaker, "speaker", "http_host", str, "0.0.0.0"),
        http_port=_get(speaker, "speaker", "http_port", int, 0),
        hub_url=_get(hub, "hub", "url", str, ""),
        broker_url=_get(hub, "hub", "broker", str, ""),
        hub_ca=hub_ca,
        local_token=local_token,
        username=_get(broker, "broker", "username", str, "") or device_id,
        password=password,
        engine=_get(audio, "audio", "engine", str, "native"),
        sink=sink,
        quality=_get(audio, "audio", "quality", str, "auto"),
        sample_rate=_get(audio, "audio", "sample_rate", int, 44100),
        normalisation=_get(audio, "audio", "normalisation", str, "track"),
        target_lufs=float(_get(audio, "audio", "target_lufs", float, -14.0)),
        crossfade_s=float(_get(audio, "audio", "crossfade_s", float, 0.0)),
        mixer=_get(audio, "audio", "mixer", str, board_mixer(board, sink)),
        board=board,
        mixer_from_board=board is not None and "mixer" not in audio,
        cache_dir=Path(cache) if cache else None,
        keys_dir=Path(keys) if keys else None,
        stream_cache_mb=_get(offline, "offline", "stream_cache_mb", int, 1024),
        download_quality=_get(offline, "offline", "quality", str, "high"),
        controls=controls,
        panel_port=_get(panel, "panel", "port", str, ""),
        panel_baud=_get(panel, "panel", "baud", int, 115200),
        updates=updates,
        sync_port=_get(sync, "sync", "port", int, 0),
        sync_bind=_get(sync, "sync", "bind", str, ""),
        sync_advertise=_get(sync, "sync", "advertise", str, ""),
    ).validated()


def with_overrides(config: SpeakerConfig, **overrides: Any) -> SpeakerConfig:
    """Apply command-line flags (``None`` means not given).

    A new sink takes the board's mixer along only if it is on the board's card,
    unless the file named the mixer itself.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if "sink" in given and "mixer" not in given and config.mixer_from_board:
        given["mixer"] = board_mixer(config.board, given["sink"])
    return replace(config, **given).validated()
