"""Board profiles: what a speaker's board needs in ``config.txt``, the ALSA device and
mixer it plays through, and the GPIO pins its controls default to.

One TOML file per board in ``hardware/boards/`` (package data, so ``legato-flash`` on
a laptop and the speaker on its Pi read the same facts); a speaker config's
``board = "KEY"`` names a file by its stem.  Everything is checked when a profile
is loaded, so a mistake stops ``legato-flash`` with the file, the key at fault and
what is allowed, instead of producing a card that boots silent::

    name = "Raspberry Pi 4 headphone jack"     # one line, shown to makers
    config_txt = ["dtparam=audio=on"]          # dtoverlay=, dtparam= or key=value lines
    alsa_pcm = "plughw:CARD=Headphones,DEV=0"  # the sink is "alsa:" + this
    mixer = "PCM"                              # ALSA simple control; "" = software volume
    sample_rates = [44100, 48000]              # rates the DAC plays without resampling

    [reserved]                 # pins the board itself drives: no control may use them
    panel_serial = [14, 15]

    [pins]                     # control -> BCM GPIO number on the 40-pin header
    play = 17

The shipped profiles name their PCM as ``plughw:CARD=<card id>,DEV=0``: the card id
is stable where a card number is not (HDMI and USB cards enumerate around a HAT),
and ``plug`` lets ALSA convert the sample format the speaker writes (S16LE stereo)
to what the DAC takes.  It could also resample, but the speaker refuses a rate the
board does not list, so it never does.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

from hardware.errors import BoardError

__all__ = [
    "CONTROLS",
    "GPIO_PINS",
    "KNOWN_SAMPLE_RATES",
    "BoardProfile",
    "FrozenMap",
    "all_boards",
    "board_summary_lines",
    "checked_pins",
    "load_board",
    "load_board_file",
    "pcm_card",
]

#: The controls a board may wire: five buttons, a rotary encoder with a push switch,
#: and a status LED that is either one colour (``led``) or RGB (``led_r/g/b``).
CONTROLS = (
    "play",
    "next",
    "prev",
    "vol_up",
    "vol_down",
    "knob_a",
    "knob_b",
    "knob_push",
    "led",
    "led_r",
    "led_g",
    "led_b",
)
#: BCM GPIO numbers on the 40-pin header (every Pi since the B+, the Pi 5 included).
GPIO_PINS = range(28)
#: Sample rates a DAC may list; anything else is a typing mistake.
KNOWN_SAMPLE_RATES = (
    8000,
    11025,
    16000,
    22050,
    32000,
    44100,
    48000,
    64000,
    88200,
    96000,
    176400,
    192000,
    352800,
    384000,
)
FIELDS = ("name", "config_txt", "alsa_pcm", "mixer", "sample_rates", "reserved", "pins")
REQUIRED = ("name", "config_txt", "alsa_pcm", "mixer", "sample_rates")
#: Longer config.txt lines risk the firmware's line limit; overlay parameters can be
#: split over several ``dtparam=`` lines instead.
MAX_CONFIG_LINE = 80

_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_PARAM = r"[A-Za-z0-9_-]+(?:=[^,=\s\x00-\x1f\x7f]+)?"
_DTOVERLAY = re.compile(rf"dtoverlay=[a-z0-9][a-z0-9_-]*(?:,{_PARAM})*")
_DTPARAM = re.compile(rf"dtparam={_PARAM}(?:,{_PARAM})*")
_SETTING = re.compile(
    r"[a-z][a-z0-9_]*=[^\s#\x00-\x1f\x7f](?:[^#\x00-\x1f\x7f]*[^\s#\x00-\x1f\x7f])?"
)
_PCM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:=,.-]*")
_PCM_CARD = re.compile(r"^(?:plug)?hw:(?:CARD=)?([^,]+)")
_RESERVED_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
BOARDS_DIR = "boards"

V = TypeVar("V")


class FrozenMap(Mapping[str, V]):
    """A read-only mapping over a tuple of pairs, in file order.

    Hashable (unlike ``MappingProxyType``), so a frozen ``BoardProfile`` holding
    one can be hashed and used as a key or a set member.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        self._items = tuple(items)

    def __getitem__(self, key: str) -> V:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"


@dataclass(frozen=True, slots=True)
class BoardProfile:
    """One board's facts, validated: see the module docstring for each field's meaning."""

    key: str  # file stem, what `board = "..."` names
    name: str  # one human line
    config_txt: tuple[str, ...]  # lines to add to config.txt, in order
    alsa_pcm: str
    mixer: str  # "" = software volume
    sample_rates: tuple[int, ...]
    pins: Mapping[str, int]  # control name -> BCM pin
    reserved_pins: Mapping[str, tuple[int, ...]] = FrozenMap()  # what the board drives

    @property
    def volume(self) -> str:
        """How volume is set: the hardware mixer control, or "software volume"."""
        return f"mixer {self.mixer!r}" if self.mixer else "software volume"


def pcm_card(pcm: str) -> str:
    """The card an ALSA ``hw``/``plughw`` PCM name plays on (``plughw:CARD=X,DEV=0`` -> X).

    "" for names that do not say (``default``, ``dmix``, a file PCM): a caller
    comparing cards must then assume they differ.
    """
    m = _PCM_CARD.match(pcm)
    return m.group(1) if m else ""


def _fail(source: str, key: str, problem: str, allowed: str) -> BoardError:
    return BoardError(f"{source}: {key} {problem}; allowed: {allowed}")


def _type_name(value: object) -> str:
    return type(value).__name__


def _string(doc: Mapping[str, Any], field: str, source: str, allowed: str) -> str:
    value = doc[field]
    if not isinstance(value, str):
        raise _fail(source, field, f"must be a string, not {_type_name(value)}", allowed)
    return value


def _int(value: object) -> TypeGuard[int]:
    """TOML's booleans are not numbers here (Python's ``bool`` is an ``int``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _name(doc: Mapping[str, Any], source: str) -> str:
    allowed = "one line of 1-80 characters"
    name = _string(doc, "name", source, allowed)
    if not name.strip() or len(name) > 80 or not name.isprintable():
        raise _fail(source, "name", f"{name!r} is not a usable name", allowed)
    return name.strip()


def _config_line_problem(line: str) -> str:
    """Why a config.txt line is refused ("" when it is fine)."""
    if len(line) > MAX_CONFIG_LINE:
        return f"is longer than {MAX_CONFIG_LINE} characters"
    if not (line.isascii() and line.isprintable()):
        return "has characters other than printable ASCII"
    if line.startswith("dtoverlay="):
        return "" if _DTOVERLAY.fullmatch(line) else "is not dtoverlay=NAME[,PARAM[=VALUE]]..."
    if line.startswith("dtparam="):
        return "" if _DTPARAM.fullmatch(line) else "is not dtparam=PARAM[=VALUE][,...]"
    return "" if _SETTING.fullmatch(line) else "is not a dtoverlay=, dtparam= or key=value line"


def _config_txt(doc: Mapping[str, Any], source: str) -> tuple[str, ...]:
    allowed = "a list of dtoverlay=..., dtparam=... or key=value lines (no sections or comments)"
    lines = doc["config_txt"]
    if not isinstance(lines, list) or not lines:
        raise _fail(source, "config_txt", "must be a non-empty list of strings", allowed)
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            problem = f"must be a string, not {_type_name(line)}"
            raise _fail(source, f"config_txt[{i}]", problem, allowed)
        problem = _config_line_problem(line)
        if problem:
            raise _fail(source, f"config_txt[{i}]", f"{line!r} {problem}", allowed)
    return tuple(lines)


def _alsa_pcm(doc: Mapping[str, Any], source: str) -> str:
    allowed = "an ALSA PCM name such as plughw:CARD=<card id>,DEV=0 (without 'alsa:')"
    pcm = _string(doc, "alsa_pcm", source, allowed)
    if not _PCM.fullmatch(pcm) or pcm.startswith("alsa:") or len(pcm) > 100:
        raise _fail(source, "alsa_pcm", f"{pcm!r} is not an ALSA PCM name", allowed)
    return pcm


def _mixer(doc: Mapping[str, Any], source: str) -> str:
    allowed = 'an ALSA simple mixer control name as amixer scontrols shows it, or "" (software)'
    mixer = _string(doc, "mixer", source, allowed)
    if mixer != mixer.strip() or len(mixer) > 64 or not mixer.isprintable():
        raise _fail(source, "mixer", f"{mixer!r} is not a mixer control name", allowed)
    return mixer


def _sample_rates(doc: Mapping[str, Any], source: str) -> tuple[int, ...]:
    allowed = ", ".join(str(r) for r in KNOWN_SAMPLE_RATES)
    rates = doc["sample_rates"]
    if not isinstance(rates, list) or not rates:
        raise _fail(source, "sample_rates", "must be a non-empty list of integers", allowed)
    for rate in rates:
        if not _int(rate) or rate not in KNOWN_SAMPLE_RATES:
            raise _fail(source, "sample_rates", f"has {rate!r}, not a known rate", allowed)
    if len(set(rates)) != len(rates):
        raise _fail(source, "sample_rates", "lists a rate twice", allowed)
    return tuple(sorted(rates))


def _pin(value: object, where: str, source: str) -> int:
    allowed = f"BCM GPIO {GPIO_PINS.start}-{GPIO_PINS.stop - 1} (the 40-pin header)"
    if not _int(value):
        raise _fail(source, where, f"must be an integer, not {_type_name(value)}", allowed)
    if value not in GPIO_PINS:
        raise _fail(source, where, f"= {value} is not a header GPIO", allowed)
    return value


def _table(doc: Mapping[str, Any], field: str, source: str, allowed: str) -> Mapping[str, Any]:
    table = doc.get(field, {})
    if not isinstance(table, dict):
        raise _fail(source, field, f"must be a table, not {_type_name(table)}", allowed)
    return table


def _reserved(doc: Mapping[str, Any], source: str) -> FrozenMap[tuple[int, ...]]:
    allowed = "[reserved] entries: lower_case_name = [GPIO, ...], each pin under one name"
    table = _table(doc, "reserved", source, allowed)
    owner: dict[int, str] = {}
    entries: list[tuple[str, tuple[int, ...]]] = []
    for purpose, pins in table.items():
        where = f"reserved.{purpose}"
        if not _RESERVED_NAME.fullmatch(purpose):
            raise _fail(source, where, "is not a lower_case name", allowed)
        if not isinstance(pins, list) or not pins:
            raise _fail(source, where, "must be a non-empty list of GPIO numbers", allowed)
        for value in pins:
            pin = _pin(value, where, source)
            if pin in owner:
                problem = f"lists GPIO {pin}, already reserved.{owner[pin]}"
                raise _fail(source, where, problem, allowed)
            owner[pin] = purpose
        entries.append((purpose, tuple(pins)))
    return FrozenMap(entries)


def _check_led_and_knob(pins: Mapping[str, int], source: str) -> None:
    """An encoder needs both phases; a status LED is one colour or all three of RGB."""
    allowed = "knob_a with knob_b; either led or all of led_r, led_g, led_b"
    if ("knob_a" in pins) != ("knob_b" in pins):
        missing = "knob_b" if "knob_a" in pins else "knob_a"
        raise _fail(source, f"pins.{missing}", "is missing (a rotary encoder has two)", allowed)
    if "knob_push" in pins and "knob_a" not in pins:
        raise _fail(source, "pins.knob_push", "needs knob_a and knob_b", allowed)
    rgb = [c for c in ("led_r", "led_g", "led_b") if c in pins]
    if rgb and "led" in pins:
        raise _fail(source, "pins.led", f"cannot be given with {', '.join(rgb)}", allowed)
    if rgb and len(rgb) != 3:
        missing = ", ".join(c for c in ("led_r", "led_g", "led_b") if c not in pins)
        raise _fail(source, f"pins.{missing.split(', ')[0]}", f"is missing ({missing})", allowed)


def _pins(
    doc: Mapping[str, Any], reserved: Mapping[str, tuple[int, ...]], source: str
) -> FrozenMap[int]:
    allowed = f"controls {', '.join(CONTROLS)}, each on its own pin, none on a reserved pin"
    table = _table(doc, "pins", source, allowed)
    taken = {pin: f"reserved.{name}" for name, pins in reserved.items() for pin in pins}
    entries: list[tuple[str, int]] = []
    for control, value in table.items():
        where = f"pins.{control}"
        if control not in CONTROLS:
            raise _fail(source, where, "is not a control", allowed)
        pin = _pin(value, where, source)
        if pin in taken:
            raise _fail(source, where, f"= {pin} is already used by {taken[pin]}", allowed)
        taken[pin] = where
        entries.append((control, pin))
    pins = FrozenMap(entries)
    _check_led_and_knob(pins, source)
    return pins


def checked_pins(
    pins: Mapping[str, Any], reserved: Mapping[str, tuple[int, ...]], source: str
) -> FrozenMap[int]:
    """``pins`` (control -> GPIO) checked as a profile's ``[pins]`` are: known controls,
    header GPIOs, no pin used twice or reserved, whole encoders and LEDs."""
    return _pins({"pins": dict(pins)}, reserved, source)


def _profile(doc: Mapping[str, Any], key: str, source: str) -> BoardProfile:
    """Check every field of a parsed profile; the first fault is the ``BoardError``."""
    for field in doc:
        if field not in FIELDS:
            raise _fail(source, field, "is not a profile key", ", ".join(FIELDS))
    for field in REQUIRED:
        if field not in doc:
            raise _fail(source, field, "is missing", ", ".join(FIELDS))
    reserved = _reserved(doc, source)
    return BoardProfile(
        key=key,
        name=_name(doc, source),
        config_txt=_config_txt(doc, source),
        alsa_pcm=_alsa_pcm(doc, source),
        mixer=_mixer(doc, source),
        sample_rates=_sample_rates(doc, source),
        pins=_pins(doc, reserved, source),
        reserved_pins=reserved,
    )


def _parse(text: str, key: str, source: str) -> BoardProfile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{source}: not valid TOML: {exc}") from exc
    return _profile(doc, key, source)


def _shipped() -> dict[str, Traversable]:
    """The profiles in the package, by key."""
    folder = resources.files("hardware").joinpath(BOARDS_DIR)
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    }


def load_board_file(path: Path) -> BoardProfile:
    """A profile from any file (a maker's own board); its key is the file's stem."""
    key = path.stem
    if not _KEY.fullmatch(key):
        raise _fail(str(path), "file name", f"{key!r} is not a board key", "a-z, 0-9, '-', '_'")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardError(f"cannot read board profile {path}: {exc}") from exc
    return _parse(text, key, str(path))


def load_board(key: str) -> BoardProfile:
    """The shipped profile ``key`` names (what ``board = "..."`` and ``--board`` take)."""
    shipped = _shipped()
    entry = shipped.get(key) if _KEY.fullmatch(key) else None
    if entry is None:
        known = ", ".join(sorted(shipped)) or "(none shipped)"
        raise BoardError(f"unknown board {key!r}; known boards: {known}")
    return _parse(entry.read_text(encoding="utf-8"), key, str(entry))


def all_boards() -> list[BoardProfile]:
    """Every shipped profile, sorted by key; a broken one raises rather than hides."""
    return [load_board(key) for key in sorted(_shipped())]


def board_summary_lines() -> list[str]:
    """One aligned line per board for ``--list-boards``: key, name, PCM, volume."""
    rows = [(b.key, b.name, b.alsa_pcm, b.volume) for b in all_boards()]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, [*widths, 0], strict=True)).rstrip()
        for row in rows
    ]
