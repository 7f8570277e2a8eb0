"""The root installer against what the speaker's user controls, without building a
release: the request and the bundle it names are taken without following links or
blocking, only a plain USTAR file of bounded size is copied into root's hands, the
speaker sees "installing" before the request goes, an untrusted config pins no key,
a refused bundle leaves nothing behind, pip runs without its configuration, and a
wheel's requirements are read as pip would read them."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device import update_command
from device.config import ConfigError, read_secret
from releases import bundle, guard, incoming, install, pins, requirements, settings, signing, slot
from releases.errors import BundleRefusedError

pytestmark = pytest.mark.timeout(120)
NOBODY = 65534


@pytest.fixture(scope="module")
def key() -> signing.ReleaseKey:
    return signing.ReleaseKey.generate()


@pytest.fixture
def layout(tmp_path: Path) -> guard.Layout:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    (layout.state / install.INCOMING).mkdir(parents=True)
    return layout


def small_bundle(path: Path, key: signing.ReleaseKey, version: str = "2.0.0") -> Path:
    wheel = path.parent / f"legato-{version}-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    bundle.make(path, wheel, "numpy==2.0.0\n", key)
    return path


def ask(layout: guard.Layout, bundle_path: Path | str, version: str = "2.0.0") -> None:
    doc = {"bundle": str(bundle_path), "version": version}
    (layout.state / install.REQUEST).write_text(json.dumps(doc))


def answer(layout: guard.Layout) -> dict[str, object]:
    doc: dict[str, object] = json.loads((layout.state / install.RESULT).read_text())
    return doc


def serve(layout: guard.Layout, key: signing.ReleaseKey) -> tuple[int, dict[str, object]]:
    status = install.serve_request(layout, key.public, "")
    assert not (layout.state / install.REQUEST).exists()
    assert not list((layout.root / install.INCOMING).glob("*")), "the root copy is left"
    return status, answer(layout)


# --- M3: what the installer opens ---------------------------------------------------


def test_a_symlinked_incoming_directory_is_refused_and_its_target_not_read(
    layout: guard.Layout, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    good = small_bundle(elsewhere / "legato-2.0.0.legato", key)
    before = good.read_bytes()
    incoming_dir = layout.state / install.INCOMING
    incoming_dir.rmdir()
    incoming_dir.symlink_to(elsewhere)
    ask(layout, incoming_dir / good.name)
    status, doc = serve(layout, key)
    assert status == install.EXIT_USAGE
    assert doc["ok"] is False
    assert doc["state"] == "done"
    assert "no links" in str(doc["reason"])
    assert good.read_bytes() == before


def test_a_symlinked_or_fifo_bundle_is_refused_at_once(
    layout: guard.Layout, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    secret = tmp_path / "root-only.txt"
    secret.write_text("root's secret line\n")
    link = layout.state / install.INCOMING / "legato-2.0.0.legato"
    link.symlink_to(secret)
    ask(layout, link)
    status, doc = serve(layout, key)
    assert status == install.EXIT_USAGE
    assert "root's secret" not in json.dumps(doc)
    link.unlink()
    os.mkfifo(link)  # root would block on open() without O_NONBLOCK (the timeout fails it)
    ask(layout, link)
    status, doc = serve(layout, key)
    assert status == install.EXIT_USAGE
    assert "not a regular file" in str(doc["reason"])


def test_a_request_naming_a_file_outside_incoming_is_refused(
    layout: guard.Layout, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    outside = small_bundle(tmp_path / "legato-2.0.0.legato", key)
    for named in (outside, layout.state / install.INCOMING / ".." / "x.legato"):
        ask(layout, named)
        status, doc = serve(layout, key)
        assert status == install.EXIT_USAGE
        assert "incoming" in str(doc["reason"])
    (layout.state / install.REQUEST).write_text("[]")
    assert serve(layout, key)[0] == install.EXIT_USAGE


def test_a_bundle_over_512_mib_is_refused_before_it_is_copied(
    layout: guard.Layout, key: signing.ReleaseKey
) -> None:
    huge = layout.state / install.INCOMING / "legato-2.0.0.legato"
    with open(huge, "wb") as f:
        f.truncate(incoming.MAX_BUNDLE_BYTES + 1)  # sparse: costs no disk
    ask(layout, huge)
    status, doc = serve(layout, key)
    assert status == install.EXIT_USAGE
    assert "larger than 512 MiB" in str(doc["reason"])


def gnu_long_name_header(size: int) -> bytes:
    """A GNU long-name header (typeflag L) claiming ``size`` bytes of name: tarfile
    would read them all into memory."""
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = 0
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[124:136] = f"{size:011o}\0".encode()
    header[148:156] = b" " * 8
    header[148:155] = f"{sum(header):06o}\0".encode()
    return bytes(header)


def test_pax_and_gnu_headers_are_refused_before_tarfile_reads_them(
    layout: guard.Layout, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    good = small_bundle(tmp_path / "good.legato", key)
    pax = io.BytesIO()
    with tarfile.open(fileobj=pax, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.pax_headers = {"comment": "x" * 100}
        tar.addfile(info, io.BytesIO(b""))
    huge_name = gnu_long_name_header(8 * 1024**3) + good.read_bytes()
    for name, raw in (("pax", pax.getvalue()), ("gnu", huge_name)):
        placed = layout.state / install.INCOMING / f"{name}.legato"
        placed.write_bytes(raw)
        ask(layout, placed)
        status, doc = serve(layout, key)
        assert status == install.EXIT_REFUSED, doc
        assert doc["code"] == "format"
        assert "not a plain file" in str(doc["reason"])
    # a bundle as the hub makes it passes the same check
    with open(good, "rb") as f:
        incoming.check_headers(f)


def test_the_speaker_sees_installing_before_the_request_goes_and_done_after(
    layout: guard.Layout, key: signing.ReleaseKey
) -> None:
    placed = small_bundle(layout.state / install.INCOMING / "legato-2.0.0.legato", key)
    ask(layout, placed)
    seen: list[tuple[dict[str, object], bool, list[str]]] = []

    def progress(step: str, share: float) -> None:
        if not seen:
            copies = [p.name for p in (layout.root / install.INCOMING).iterdir()]
            seen.append((answer(layout), (layout.state / install.REQUEST).exists(), copies))

    status = install.serve_request(layout, key.public, "", progress=progress)
    assert seen[0][0] == {"version": "2.0.0", "state": "installing"}
    assert seen[0][1] is False  # deleted only after "installing" was written
    assert len(seen[0][2]) == 1  # verified from root's own copy
    mode = stat.S_IMODE((layout.root / install.INCOMING).stat().st_mode)
    assert mode == 0o700
    assert status == install.EXIT_FAILED  # "not really a wheel": pip refuses it
    doc = answer(layout)
    assert doc["state"] == "done"
    assert doc["ok"] is False
    assert doc["code"] == "install"
    assert not list((layout.root / install.INCOMING).iterdir())


def test_the_result_replaces_a_planted_link_and_never_writes_through_it(
    layout: guard.Layout, tmp_path: Path
) -> None:
    target = tmp_path / "not-yours.txt"
    target.write_text("untouched\n")
    (layout.state / install.RESULT).symlink_to(target)
    install.write_result(layout, {"version": "1", "state": "installing"})
    assert target.read_text() == "untouched\n"
    assert not (layout.state / install.RESULT).is_symlink()
    assert answer(layout) == {"version": "1", "state": "installing"}
    moved = tmp_path / "moved-state"
    layout.state.rename(moved)
    layout.state.symlink_to(moved)  # the state directory itself a link: not written
    with pytest.raises(OSError, match=r"Too many levels of symbolic links|Not a directory"):
        install.write_result(layout, {"version": "1"})


# --- M4: the config that pins the key -----------------------------------------------


def config_file(path: Path, key: signing.ReleaseKey, layout: guard.Layout) -> Path:
    path.write_text(
        f'[updates]\nrelease_key = "{key.public_text}"\n'
        f'root = "{layout.root}"\nstate_dir = "{layout.state}"\n'
    )
    path.chmod(0o640)
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="the check is made only when run as root")
def test_as_root_a_config_the_speaker_could_change_pins_no_key(
    layout: guard.Layout,
    key: signing.ReleaseKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = config_file(tmp_path / "speaker.toml", key, layout)
    assert settings.read(config).public_key() == key.public  # root:root 0640 is fine
    config.chmod(0o664)
    with pytest.raises(ValueError, match="not root's alone"):
        settings.read(config)
    config.chmod(0o640)
    os.chown(config, NOBODY, 0)
    with pytest.raises(ValueError, match="owner uid 65534"):
        settings.read(config)
    # as the unit runs it: exit 2, one line, and the request answered (not retried)
    placed = small_bundle(layout.state / install.INCOMING / "legato-2.0.0.legato", key)
    ask(layout, placed)
    args = ["--root", str(layout.root), "--state", str(layout.state), "--config", str(config)]
    assert install.main([*args, "--request"]) == install.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not root's alone" in err
    assert not (layout.state / install.REQUEST).exists()
    assert answer(layout)["code"] == "key"
    assert layout.current() is None
    # legato-speaker update, run as root, refuses it too
    code = update_command.main(["--config", str(config), "--bundle", str(placed), "--check"])
    assert code == install.EXIT_USAGE
    assert "not root's alone" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="files owned by another user need root")
def test_a_root_owned_secret_may_be_read_by_its_group_only(tmp_path: Path) -> None:
    secret = tmp_path / "speaker.secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o640)
    assert read_secret(secret) == "s3cret"  # root:legato 0640, as first boot leaves it
    for mode in (0o644, 0o660):
        secret.chmod(mode)
        with pytest.raises(ConfigError, match="readable by others"):
            read_secret(secret)
    secret.chmod(0o640)
    os.chown(secret, NOBODY, 0)  # the speaker's own file: 0600 only
    with pytest.raises(ConfigError, match="readable by others"):
        read_secret(secret)
    secret.chmod(0o600)
    assert read_secret(secret) == "s3cret"


# --- m8, m2, m5, m6 -------------------------------------------------------------------


def test_a_release_key_open_to_others_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "release.key"
    made = signing.ReleaseKey.load_or_create(path)
    assert signing.ReleaseKey.load_or_create(path).public == made.public
    path.chmod(0o640)
    with pytest.raises(ValueError, match="chmod 600") as caught:
        signing.ReleaseKey.load_or_create(path)
    raw = path.read_bytes()
    assert raw.hex() not in str(caught.value)
    assert repr(raw) not in str(caught.value)


def test_the_install_lock_is_roots_alone(layout: guard.Layout) -> None:
    layout.root.mkdir()
    (layout.root / install.LOCK).write_text("")
    (layout.root / install.LOCK).chmod(0o644)  # as an older installer left it
    with install.install_lock(layout):
        assert stat.S_IMODE((layout.root / install.LOCK).stat().st_mode) == 0o600


def test_a_refused_bundle_creates_nothing_and_update_says_no_done(
    tmp_path: Path, key: signing.ReleaseKey, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    placed = small_bundle(tmp_path / "legato-2.0.0.legato", key)
    cut = tmp_path / "cut.legato"
    cut.write_bytes(placed.read_bytes()[:1500])
    with pytest.raises(BundleRefusedError):
        install.install(cut, key.public, layout)
    assert not layout.root.exists()
    config = config_file(tmp_path / "speaker.toml", key, layout)
    code = update_command.main(["--config", str(config), "--bundle", str(cut)])
    assert code == install.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "refused (" in err
    assert "done" not in err
    assert not layout.root.exists()


def test_after_an_install_with_nothing_before_it_names_no_release_to_go_back_to() -> None:
    assert "None" not in update_command._after(None)
    assert "no earlier release" in update_command._after(None)
    assert "goes back to 1.0.0" in update_command._after("1.0.0")


# --- C2: pip as root ------------------------------------------------------------------


def test_pip_for_a_slot_reads_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = http://evil.invalid/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://evil.invalid/simple")
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=slot.clean_env(),
        cwd="/",
        check=True,
    )
    assert "evil" not in listed.stdout


def fake_legato_wheel(out: Path, requires: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / "legato-9.0.0-py3-none-any.whl"
    info = "legato-9.0.0.dist-info"
    meta = "Metadata-Version: 2.1\nName: legato\nVersion: 9.0.0\nProvides-Extra: speaker\n"
    meta += "".join(f"Requires-Dist: {line}\n" for line in requires)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("legato_fake/__init__.py", "")
        zf.writestr(f"{info}/METADATA", meta)
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return wheel


def evil_sdist(out: Path, marker: Path) -> Path:
    """An sdist whose setup.py leaves ``marker``: what a source build as root runs."""
    sdist = out / "evilpkg-1.0.tar.gz"
    setup = f"open({str(marker)!r}, 'w').write('ran')\nfrom setuptools import setup\nsetup()\n"
    pkg_info = "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in (("setup.py", setup), ("PKG-INFO", pkg_info)):
            data = text.encode()
            info = tarfile.TarInfo(f"evilpkg-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sdist


@pytest.mark.timeout(300)
def test_an_index_install_never_builds_a_source_distribution(tmp_path: Path) -> None:
    house = tmp_path / "wheels"
    house.mkdir()
    marker = tmp_path / "setup-py-ran"
    evil_sdist(house, marker)
    wheel = fake_legato_wheel(tmp_path, ['evilpkg; extra == "speaker"'])
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("evilpkg==1.0\n")
    env = tmp_path / "env"
    slot.make_venv(env, "9.0.0")
    args = slot.index_install_args(
        slot.pip_command(env), wheel, constraints, tmp_path / "cache", house
    )
    done = subprocess.run(
        [*args, "--no-index"],  # loopback only in tests: the wheelhouse alone
        capture_output=True,
        text=True,
        timeout=240,
        env=slot.clean_env(),
        cwd="/",
    )
    assert done.returncode != 0
    assert not marker.exists()
    assert "--only-binary=:all:" in args
    assert "--isolated" in args


# --- M1: a wheel's requirements ---------------------------------------------------------


PI_ONLY = 'lgpio>=0.2.2; platform_machine == "aarch64" and extra == "speaker"'


def test_a_release_pins_what_its_own_wheel_requires() -> None:
    text = pins.constraints(
        [
            'numpy>=2; extra == "speaker"',
            'PyYAML>=6; extra == "speaker"',  # new in this release, installed here
            PI_ONLY,  # not installed here: named bare
            'fastapi; extra == "hub"',  # not the speaker's
            'pywin32; sys_platform == "win32"',  # neither a Pi's nor this machine's
        ]
    )
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    import importlib.metadata

    assert f"PyYAML=={importlib.metadata.version('PyYAML')}" in lines
    assert f"numpy=={importlib.metadata.version('numpy')}" in lines
    assert "lgpio" in lines
    assert not any(line.lower().startswith(("fastapi", "pywin32")) for line in lines)


def test_the_running_slots_packages_do_only_when_they_meet_the_new_wheel(
    tmp_path: Path,
) -> None:
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    numpy = __import__("importlib.metadata").metadata.version("numpy")
    ok = fake_legato_wheel(tmp_path / "a", ['numpy>=2; extra == "speaker"', PI_ONLY])
    assert requirements.unmet(ok, site) == ([] if os.uname().machine != "aarch64" else ["lgpio"])
    newer = fake_legato_wheel(
        tmp_path / "b",
        [f'numpy>{numpy}; extra == "speaker"', 'not-installed-anywhere; extra == "speaker"'],
    )
    assert requirements.unmet(newer, site) == ["numpy", "not-installed-anywhere"]


@pytest.mark.parametrize(
    ("line", "machine", "expected"),
    [
        ('a; extra == "speaker"', "x86_64", True),
        ('a; extra == "hub"', "x86_64", False),
        ("a; platform_machine == 'aarch64'", "aarch64", True),
        ("a; platform_machine == 'aarch64'", "x86_64", False),
        ('a; (python_version >= "3.8" and extra == "speaker") or os_name == "nt"', "x", True),
        ('a; python_version < "3.8"', "x86_64", False),
        ('a; "arm" in platform_machine', "armv7l", True),
        ('a; platform_machine not in "x86_64 aarch64"', "riscv64", True),
    ],
)
def test_markers_are_read_as_pip_reads_them(line: str, machine: str, expected: bool) -> None:
    env = requirements.environment("speaker", platform_machine=machine)
    assert requirements.applies(requirements.parse(line), env) is expected


@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=4),
    st.lists(st.integers(0, 30), min_size=1, max_size=4),
    st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
)
def test_specifiers_order_versions_as_tuples_do(a: list[int], b: list[int], op: str) -> None:
    left, right = ".".join(map(str, a)), ".".join(map(str, b))
    pad = max(len(a), len(b))
    ka, kb = tuple(a + [0] * (pad - len(a))), tuple(b + [0] * (pad - len(b)))
    expected = {
        "==": ka == kb,
        "!=": ka != kb,
        "<": ka < kb,
        "<=": ka <= kb,
        ">": ka > kb,
        ">=": ka >= kb,
    }[op]
    assert requirements.version_matches(left, op, right) is expected


def test_compatible_and_wildcard_specifiers() -> None:
    req = requirements.parse("soxr (~=0.5.1, !=0.5.3)")
    assert [requirements.satisfied_by(req, v) for v in ("0.5.0", "0.5.1", "0.5.3", "0.6")] == [
        False,
        True,
        False,
        False,
    ]
    star = requirements.parse("numpy==2.*")
    assert requirements.satisfied_by(star, "2.4.6")
    assert not requirements.satisfied_by(star, "3.0")
    assert not requirements.satisfied_by(requirements.parse("x>=1"), "not-a-version")
