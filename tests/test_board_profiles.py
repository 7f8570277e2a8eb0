"""Board profiles: the shipped ones load and say what the hardware needs; a bad
profile is refused naming the file, the key and what is allowed; the speaker's
config takes its sink, mixer and pins from the board it names."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device import cli
from device import config as speaker_config
from device.config import ConfigError
from hardware.board_profiles import (
    CONTROLS,
    KNOWN_SAMPLE_RATES,
    BoardProfile,
    FrozenMap,
    all_boards,
    board_summary_lines,
    load_board,
    load_board_file,
    pcm_card,
)
from hardware.errors import BoardError, HardwareError

ROOT = Path(__file__).resolve().parent.parent
BOARDS_DIR = ROOT / "hardware" / "boards"
SHIPPED = sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))

GOOD = """\
name = "Test board"
config_txt = ["dtparam=audio=off", "dtoverlay=hifiberry-dac"]
alsa_pcm = "plughw:CARD=sndrpihifiberry,DEV=0"
mixer = ""
sample_rates = [44100, 48000]

[reserved]
i2s = [18, 19, 20, 21]

[pins]
play = 17
knob_a = 5
knob_b = 6
led = 12
"""


def write(tmp_path: Path, text: str, stem: str = "test-board") -> Path:
    path = tmp_path / f"{stem}.toml"
    path.write_text(text)
    return path


# --- the shipped profiles -----------------------------------------------------------


def test_the_five_boards_ship() -> None:
    assert {
        "pi-zero-2w-hifiberry-dacplus-zero",
        "pi4-headphones",
        "pi-iqaudio-digiamp-plus",
        "pi-max98357a",
        "pi5-hifiberry-dac2-hd",
    } <= set(SHIPPED)


@pytest.mark.parametrize("key", SHIPPED)
def test_every_shipped_profile_loads_complete(key: str) -> None:
    board = load_board(key)
    assert board.key == key
    assert board == load_board_file(BOARDS_DIR / f"{key}.toml")
    # Every control the front panel code expects has a default pin.
    assert {"play", "next", "prev", "vol_up", "vol_down", "knob_a", "knob_b", "knob_push"} <= set(
        board.pins
    )
    assert "led" in board.pins or {"led_r", "led_g", "led_b"} <= set(board.pins)
    reserved = {pin for pins in board.reserved_pins.values() for pin in pins}
    assert not reserved & set(board.pins.values())
    assert {14, 15} <= reserved  # the front-panel serial link's UART
    # A stable card name, and plug so ALSA can adapt the sample format.
    assert board.alsa_pcm.startswith("plughw:CARD=")
    assert board.alsa_pcm.endswith(",DEV=0")
    assert {44100, 48000} <= set(board.sample_rates)
    hash(board)  # frozen all the way down


@pytest.mark.parametrize(
    ("key", "overlay", "card", "mixer", "rates", "bus_pins"),
    [
        (
            "pi-zero-2w-hifiberry-dacplus-zero",
            "dtoverlay=hifiberry-dac",
            "sndrpihifiberry",
            "",
            (44100, 48000, 88200, 96000, 176400, 192000),
            {18, 19, 20, 21},
        ),
        ("pi4-headphones", "dtparam=audio=on", "Headphones", "PCM", (44100, 48000), set()),
        (
            "pi-iqaudio-digiamp-plus",
            "dtoverlay=iqaudio-dacplus,unmute_amp",
            "IQaudIODAC",
            "Digital",
            (44100, 48000, 88200, 96000, 176400, 192000),
            {2, 3, 18, 19, 20, 21, 22},
        ),
        (
            "pi-max98357a",
            "dtoverlay=max98357a",
            "MAX98357A",
            "",
            (44100, 48000, 88200, 96000),
            {4, 18, 19, 20, 21},
        ),
        (
            "pi5-hifiberry-dac2-hd",
            "dtoverlay=hifiberry-dacplushd",
            "sndrpihifiberry",
            "DAC",
            (44100, 48000, 88200, 96000, 176400, 192000),
            {2, 3, 16, 18, 19, 20, 21},
        ),
    ],
)
def test_shipped_profiles_hold_the_hardware_facts(
    key: str, overlay: str, card: str, mixer: str, rates: tuple[int, ...], bus_pins: set[int]
) -> None:
    board = load_board(key)
    assert overlay in board.config_txt
    if key != "pi4-headphones":
        assert "dtparam=audio=off" in board.config_txt
    assert pcm_card(board.alsa_pcm) == card
    assert board.mixer == mixer
    assert board.sample_rates == rates
    reserved = {pin for pins in board.reserved_pins.values() for pin in pins}
    assert bus_pins <= reserved


def test_all_boards_sorted_and_summarised() -> None:
    boards = all_boards()
    assert [b.key for b in boards] == SHIPPED
    lines = board_summary_lines()
    assert len(lines) == len(boards)
    for board, line in zip(boards, lines, strict=True):
        assert line.startswith(board.key + " ")
        assert board.name in line
        assert board.alsa_pcm in line
        assert (repr(board.mixer) if board.mixer else "software volume") in line
    assert "\n" not in "".join(lines)


def test_unknown_board_names_itself_and_the_known_ones() -> None:
    with pytest.raises(BoardError, match="unknown board 'pi-nope'") as err:
        load_board("pi-nope")
    for key in SHIPPED:
        assert key in str(err.value)
    assert isinstance(err.value, HardwareError)


@pytest.mark.parametrize("key", ["../pyproject", "pi4-headphones.toml", "", "PI4"])
def test_a_board_key_is_never_a_path(key: str) -> None:
    with pytest.raises(BoardError, match="unknown board"):
        load_board(key)


def test_pcm_card() -> None:
    assert pcm_card("plughw:CARD=IQaudIODAC,DEV=0") == "IQaudIODAC"
    assert pcm_card("hw:CARD=Headphones,DEV=0") == "Headphones"
    assert pcm_card("hw:1,0") == "1"
    assert pcm_card("default") == ""
    assert pcm_card("file:FILE=/tmp/x.raw,FORMAT=raw") == ""


def test_frozen_map_is_a_hashable_read_only_mapping() -> None:
    pins = FrozenMap([("play", 17), ("led", 12)])
    assert dict(pins) == {"play": 17, "led": 12}
    assert list(pins) == ["play", "led"]
    assert pins == FrozenMap([("led", 12), ("play", 17)])
    assert hash(pins) == hash(FrozenMap([("led", 12), ("play", 17)]))
    with pytest.raises(KeyError):
        pins["next"]
    with pytest.raises(TypeError):
        pins["play"] = 3  # type: ignore[index]


# --- bad profiles: each refusal names the file, the key and what is allowed -----------------


@pytest.mark.parametrize(
    ("old", "new", "key", "allowed"),
    [
        ('name = "Test board"', 'name = "Test board"\ncolour = "red"', "colour", "config_txt"),
        ('name = "Test board"\n', "", "name is missing", "alsa_pcm"),
        ('name = "Test board"', 'name = "  "', "name", "one line"),
        ('name = "Test board"', "name = 3", "name must be a string, not int", "one line"),
        ('["dtparam=audio=off", ', '["[pi4]", ', "config_txt[0]", "dtoverlay="),
        ('["dtparam=audio=off", ', '["# a comment", ', "config_txt[0]", "key=value"),
        ('"dtoverlay=hifiberry-dac"]', '"dtoverlay=Hifi Berry"]', "config_txt[1]", "dtparam="),
        ('"dtoverlay=hifiberry-dac"]', '"dtparam="]', "config_txt[1]", "dtoverlay="),
        ('"dtoverlay=hifiberry-dac"]', '"gpu_mem = 16"]', "config_txt[1]", "key=value"),
        ('"dtoverlay=hifiberry-dac"]', "3]", "config_txt[1] must be a string", "key=value"),
        (
            'config_txt = ["dtparam=audio=off", "dtoverlay=hifiberry-dac"]',
            "config_txt = []",
            "config_txt",
            "dtoverlay=",
        ),
        ('"plughw:CARD=sndrpihifiberry,DEV=0"', '"alsa:hw:0"', "alsa_pcm", "plughw:CARD="),
        ('"plughw:CARD=sndrpihifiberry,DEV=0"', '"hw 0"', "alsa_pcm", "ALSA PCM name"),
        ('mixer = ""', 'mixer = " Digital"', "mixer", "amixer scontrols"),
        ('mixer = ""\n', "", "mixer is missing", "sample_rates"),
        ("[44100, 48000]", "[44100, 44000]", "sample_rates has 44000", "176400"),
        ("[44100, 48000]", "[44100, 44100]", "sample_rates lists a rate twice", "192000"),
        ("[44100, 48000]", '"44100"', "sample_rates", "48000"),
        ("[44100, 48000]", "[true]", "sample_rates has True", "44100"),
        ("play = 17", "play = 28", "pins.play = 28", "BCM GPIO 0-27"),
        ("play = 17", "play = -1", "pins.play = -1", "BCM GPIO 0-27"),
        ("play = 17", 'play = "17"', "pins.play must be an integer", "BCM GPIO 0-27"),
        ("play = 17", "play = true", "pins.play must be an integer", "BCM GPIO 0-27"),
        ("play = 17", "stop = 17", "pins.stop is not a control", "vol_down"),
        ("play = 17", "play = 12", "pins.led = 12 is already used by pins.play", "own pin"),
        ("play = 17", "play = 18", "pins.play = 18 is already used by reserved.i2s", "reserved"),
        ("knob_b = 6\n", "", "pins.knob_b is missing", "knob_a with knob_b"),
        ("led = 12", "led = 12\nled_r = 13", "pins.led cannot be given with led_r", "led_g"),
        ("led = 12", "led_r = 12\nled_g = 13", "pins.led_b is missing", "all of led_r"),
        ("knob_a = 5\nknob_b = 6", "knob_push = 5", "pins.knob_push needs knob_a", "knob_b"),
        ("i2s = [18, 19, 20, 21]", "i2s = [18, 19, 18]", "reserved.i2s lists GPIO 18", "one name"),
        ("i2s = [18, 19, 20, 21]", "I2S = [18]", "reserved.I2S is not a lower_case", "[GPIO"),
        ("i2s = [18, 19, 20, 21]", "i2s = 18", "reserved.i2s must be a non-empty list", "GPIO"),
        ("i2s = [18, 19, 20, 21]", "i2s = [40]", "reserved.i2s = 40", "BCM GPIO 0-27"),
        ("[pins]", "[[pins]]", "pins must be a table, not list", "controls"),
        ("[reserved]\ni2s = [18, 19, 20, 21]", "reserved = 3", "reserved must be a table", "GPIO"),
    ],
)
def test_a_bad_profile_names_file_key_and_allowed(
    tmp_path: Path, old: str, new: str, key: str, allowed: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(BoardError) as err:
        load_board_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    _, _, allowed_part = message.partition("; allowed: ")
    assert allowed in allowed_part, message


def test_the_good_sample_loads(tmp_path: Path) -> None:
    board = load_board_file(write(tmp_path, GOOD))
    assert board == BoardProfile(
        key="test-board",
        name="Test board",
        config_txt=("dtparam=audio=off", "dtoverlay=hifiberry-dac"),
        alsa_pcm="plughw:CARD=sndrpihifiberry,DEV=0",
        mixer="",
        sample_rates=(44100, 48000),
        pins=FrozenMap([("play", 17), ("knob_a", 5), ("knob_b", 6), ("led", 12)]),
        reserved_pins=FrozenMap([("i2s", (18, 19, 20, 21))]),
    )


def test_broken_toml_and_unreadable_files_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name = [")
    with pytest.raises(BoardError, match=f"{path}: not valid TOML"):
        load_board_file(path)
    with pytest.raises(BoardError, match="cannot read board profile"):
        load_board_file(tmp_path / "missing.toml")
    with pytest.raises(BoardError, match="is not a board key"):
        load_board_file(write(tmp_path, GOOD, stem="Bad Name"))


def test_config_lines_with_parameters_and_plain_settings_pass(tmp_path: Path) -> None:
    lines = '["dtoverlay=max98357a,sdmode-pin=16", "dtparam=i2s=on,spi=off", "gpu_mem=16"]'
    text = GOOD.replace('["dtparam=audio=off", "dtoverlay=hifiberry-dac"]', lines)
    board = load_board_file(write(tmp_path, text))
    assert board.config_txt[0] == "dtoverlay=max98357a,sdmode-pin=16"


# --- properties ------------------------------------------------------------------------

PROFILE_HEAD = """\
name = "Generated"
config_txt = ["dtparam=audio=off"]
alsa_pcm = "hw:CARD=X,DEV=0"
mixer = ""
sample_rates = [48000]

[reserved]
i2s = [18, 19, 20, 21]

[pins]
"""
# Controls that can stand alone, so the pairing rules do not get in the way.
SOLO_CONTROLS = ["play", "next", "prev", "vol_up", "vol_down", "led"]


def load_generated(pins: dict[str, int]) -> BoardProfile:
    body = "".join(f"{control} = {pin}\n" for control, pin in pins.items())
    with tempfile.TemporaryDirectory() as folder:
        return load_board_file(write(Path(folder), PROFILE_HEAD + body, stem="generated"))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(SOLO_CONTROLS), st.integers(-5, 40)))
def test_pins_load_exactly_when_each_is_a_free_header_gpio(pins: dict[str, int]) -> None:
    values = list(pins.values())
    acceptable = (
        all(0 <= p <= 27 for p in values)
        and len(set(values)) == len(values)
        and not set(values) & {18, 19, 20, 21}
    )
    if acceptable:
        assert dict(load_generated(pins).pins) == pins
    else:
        with pytest.raises(BoardError, match=r"generated\.toml: pins\.\w+"):
            load_generated(pins)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(SOLO_CONTROLS), min_size=2, max_size=6, unique=True),
    st.integers(0, 17),
)
def test_a_pin_used_twice_is_always_refused(controls: list[str], pin: int) -> None:
    pins = {control: pin for control in controls}
    with pytest.raises(BoardError, match=f"= {pin} is already used by pins.{controls[0]}"):
        load_generated(pins)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=90))
def test_any_config_line_is_accepted_or_refused_cleanly(line: str) -> None:
    toml_line = line.replace("\\", "\\\\").replace('"', '\\"')
    text = GOOD.replace('"dtparam=audio=off"', '"' + toml_line + '"')
    with tempfile.TemporaryDirectory() as folder:
        try:
            board = load_board_file(write(Path(folder), text))
        except BoardError as exc:
            message = str(exc)
        else:
            message = ""
            accepted = board.config_txt[0]
            assert "=" in accepted
            assert accepted == accepted.strip()
            assert "#" not in accepted
            assert accepted.isascii()
            assert accepted.isprintable()
            assert len(accepted) <= 80
    assert not message or "allowed:" in message or "not valid TOML" in message


@given(st.lists(st.sampled_from(KNOWN_SAMPLE_RATES), min_size=1, unique=True))
def test_known_rates_load_sorted(rates: list[int]) -> None:
    text = PROFILE_HEAD.replace("[48000]", str(rates))
    with tempfile.TemporaryDirectory() as folder:
        board = load_board_file(write(Path(folder), text, stem="rates"))
    assert board.sample_rates == tuple(sorted(rates))


def test_every_control_name_is_accepted(tmp_path: Path) -> None:
    body = "".join(f"{c} = {i}\n" for i, c in enumerate(c for c in CONTROLS if c != "led"))
    board = load_board_file(write(tmp_path, PROFILE_HEAD + body))
    assert set(board.pins) == set(CONTROLS) - {"led"}


# --- the speaker's config --------------------------------------------------------------


def speaker_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "speaker.toml"
    path.write_text('[speaker]\nid = "den-1"\nname = "Den"\n' + text)
    return path


def test_a_board_gives_the_speaker_its_pcm_mixer_and_pins(tmp_path: Path) -> None:
    cfg = speaker_config.load(speaker_toml(tmp_path, 'board = "pi-iqaudio-digiamp-plus"\n'))
    board = load_board("pi-iqaudio-digiamp-plus")
    assert cfg.board == board
    assert cfg.sink == "alsa:plughw:CARD=IQaudIODAC,DEV=0"
    assert cfg.mixer == "Digital"
    assert cfg.pins == board.pins
    assert cfg.pins["play"] == 17


def test_without_a_board_nothing_changes(tmp_path: Path) -> None:
    cfg = speaker_config.load(speaker_toml(tmp_path, ""))
    assert (cfg.board, cfg.sink, cfg.mixer, dict(cfg.pins)) == (None, "null", "", {})


def test_a_board_without_a_mixer_means_software_volume(tmp_path: Path) -> None:
    cfg = speaker_config.load(speaker_toml(tmp_path, 'board = "pi-max98357a"\n'))
    assert (cfg.sink, cfg.mixer) == ("alsa:plughw:CARD=MAX98357A,DEV=0", "")


@pytest.mark.parametrize(
    ("audio", "sink", "mixer"),
    [
        # The config's own sink wins; the board's mixer follows it only on the board's card.
        ('sink = "alsa:hw:CARD=IQaudIODAC,DEV=0"', "alsa:hw:CARD=IQaudIODAC,DEV=0", "Digital"),
        ('sink = "alsa:hw:CARD=Device,DEV=0"', "alsa:hw:CARD=Device,DEV=0", ""),
        ('sink = "file:/tmp/x.raw"', "file:/tmp/x.raw", ""),
        # The config's own mixer wins, "" (software volume) included.
        ('mixer = ""', "alsa:plughw:CARD=IQaudIODAC,DEV=0", ""),
        ('mixer = "Analogue"', "alsa:plughw:CARD=IQaudIODAC,DEV=0", "Analogue"),
        ('sink = "null"\nmixer = "Digital"', "null", "Digital"),
    ],
)
def test_what_the_config_sets_itself_wins(
    tmp_path: Path, audio: str, sink: str, mixer: str
) -> None:
    text = f'board = "pi-iqaudio-digiamp-plus"\n[audio]\n{audio}\n'
    cfg = speaker_config.load(speaker_toml(tmp_path, text))
    assert (cfg.sink, cfg.mixer) == (sink, mixer)
    assert cfg.pins["led"] == 12  # the pins stay the board's whatever plays


@pytest.mark.parametrize(
    ("audio", "flag", "mixer"),
    [
        ("", "null", ""),
        ("", "alsa:hw:CARD=IQaudIODAC,DEV=0", "Digital"),
        ("", "alsa:hw:1,0", ""),
        ('mixer = "Digital"', "alsa:hw:1,0", "Digital"),
        ('sink = "null"', "alsa:hw:CARD=IQaudIODAC,DEV=0", "Digital"),
    ],
)
def test_the_command_line_sink_wins(tmp_path: Path, audio: str, flag: str, mixer: str) -> None:
    path = speaker_toml(tmp_path, f'board = "pi-iqaudio-digiamp-plus"\n[audio]\n{audio}\n')
    cfg = cli.config_from_args(cli.build_parser().parse_args(["--config", str(path)]))
    assert cfg.board == load_board("pi-iqaudio-digiamp-plus")
    cfg = cli.config_from_args(
        cli.build_parser().parse_args(["--config", str(path), "--sink", flag])
    )
    assert (cfg.sink, cfg.mixer) == (flag, mixer)


def test_a_boards_mixer_follows_its_card() -> None:
    board = load_board("pi-iqaudio-digiamp-plus")
    assert speaker_config.board_mixer(board, "alsa:plughw:CARD=IQaudIODAC,DEV=0") == "Digital"
    assert speaker_config.board_mixer(board, "alsa:hw:IQaudIODAC") == "Digital"
    assert speaker_config.board_mixer(board, "alsa:default") == ""
    assert speaker_config.board_mixer(board, "null") == ""
    assert speaker_config.board_mixer(None, "alsa:default") == ""
    custom = dataclasses.replace(board, alsa_pcm="default", mixer="Master")
    assert speaker_config.board_mixer(custom, "alsa:default") == "Master"
    assert speaker_config.board_mixer(custom, "alsa:hw:0") == ""


def test_an_unknown_board_is_a_config_error_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"speaker\.board: unknown board 'pi-zero-w'") as err:
        speaker_config.load(speaker_toml(tmp_path, 'board = "pi-zero-w"\n'))
    for key in SHIPPED:
        assert key in str(err.value)
    with pytest.raises(ConfigError, match=r"speaker\.board must be a str"):
        speaker_config.load(speaker_toml(tmp_path, "board = 4\n"))


def test_a_sample_rate_the_board_cannot_play_is_refused(tmp_path: Path) -> None:
    text = 'board = "pi4-headphones"\n[audio]\nsample_rate = 96000\n'
    with pytest.raises(
        ConfigError,
        match=r"audio\.sample_rate 96000 is not a rate board 'pi4-headphones' plays; "
        r"use one of 44100, 48000",
    ):
        speaker_config.load(speaker_toml(tmp_path, text))
    path = speaker_toml(tmp_path, 'board = "pi4-headphones"\n')
    assert speaker_config.load(path).sample_rate == 44100
    args = cli.build_parser().parse_args(["--config", str(path), "--sample-rate", "88200"])
    with pytest.raises(ConfigError, match=r"audio\.sample_rate 88200 is not a rate board"):
        cli.config_from_args(args)
    args = cli.build_parser().parse_args(["--config", str(path), "--sample-rate", "48000"])
    assert cli.config_from_args(args).sample_rate == 48000


# --- packaging -----------------------------------------------------------------------------


def test_the_wheel_ships_every_profile(tmp_path: Path) -> None:
    # Built from a copy of the tree: an old build/ directory in the checkout could
    # otherwise carry files that are no longer there.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("connect_protocol", "device", "hub", "offline_cache", "hardware"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.so")
        )
    out = tmp_path / "out"
    build = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--no-build-isolation", "-w", str(out), str(source)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("legato-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = {f"hardware/boards/{key}.toml" for key in SHIPPED}
        assert shipped <= names
        assert "hardware/board_profiles.py" in names
        for name in shipped:
            assert archive.read(name) == (ROOT / name).read_bytes()
