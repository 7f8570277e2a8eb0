"""Broker credentials and ACL: the pure rules, the hash format, and both real brokers.

The integration tests run the same scenarios against Mosquitto and the embedded
amqtt broker with real paho clients.  Every "not delivered" check waits for a
control message sent *after* the forbidden one and then a further grace period,
so a pass means the broker dropped the message, not that we stopped looking.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect_protocol.topics import (
    HUB_USERNAME,
    ROOT,
    Channel,
    acl_patterns_for_speaker,
    device_topic,
)
from hub.fleet.broker import (
    BrokerError,
    BrokerUser,
    EmbeddedBroker,
    MosquittoProcess,
    Role,
    hash_secret,
    may_publish,
    may_subscribe,
    new_secret,
    verify_secret,
    write_mosquitto_config,
)
from tests.brokers import (
    BROKER_KINDS,
    LOOPBACK,
    MqttClient,
    RunningBroker,
    client_for,
    have_mosquitto,
    make_user,
    start_broker,
    start_mosquitto,
)

A, B, OBSERVER = "spk-a", "spk-b", "observer-1"
USERS: list[tuple[str, Role]] = [
    (HUB_USERNAME, "hub"),
    (A, "speaker"),
    (B, "speaker"),
    (OBSERVER, "observer"),
]
NO_USERS: dict[str, BrokerUser] = {}
#: How long a negative check keeps listening after its control message arrived.
GRACE = 1.0

_HASH = hash_secret("x")
HUB = BrokerUser(username=HUB_USERNAME, role="hub", secret_hash=_HASH)
SPK_A = BrokerUser(username=A, role="speaker", secret_hash=_HASH)
SPK_B = BrokerUser(username=B, role="speaker", secret_hash=_HASH)
OBS = BrokerUser(username=OBSERVER, role="observer", secret_hash=_HASH)


def cmd(device: str) -> str:
    return device_topic(device, Channel.CMD)


def state(device: str) -> str:
    return device_topic(device, Channel.STATE)


def status(device: str) -> str:
    return device_topic(device, Channel.STATUS)


OWN_PUBLISH_A = {
    device_topic(A, c) for c in (Channel.STATUS, Channel.STATE, Channel.ACK, Channel.EVENTS)
}


# --- pure ACL -----------------------------------------------------------------------


def test_speaker_publishes_only_its_own_four_topics() -> None:
    for topic in OWN_PUBLISH_A:
        assert may_publish(SPK_A, topic), topic
    assert not may_publish(SPK_A, cmd(A))
    for channel in Channel:
        assert not may_publish(SPK_A, device_topic(B, channel))


def test_speaker_subscribes_only_to_its_own_cmd() -> None:
    assert may_subscribe(SPK_A, cmd(A))
    for topic_filter in [
        cmd(B),
        state(A),
        f"{ROOT}/device/+/cmd",
        f"{ROOT}/device/{A}/+",
        f"{ROOT}/device/{A}/#",
        f"{ROOT}/#",
        "#",
        "+/v1/device/spk-a/cmd",
    ]:
        assert not may_subscribe(SPK_A, topic_filter), topic_filter


def test_only_the_hub_publishes_commands() -> None:
    assert may_publish(HUB, cmd(A))
    assert may_publish(HUB, cmd(B))
    for user in (SPK_A, SPK_B, OBS, None):
        assert not may_publish(user, cmd(A))
        assert not may_publish(user, cmd(B))


def test_hub_and_observer_rights() -> None:
    for topic in (cmd(A), state(B), f"{ROOT}/hub/anything", ROOT):
        assert may_publish(HUB, topic), topic
        assert not may_publish(OBS, topic), topic
    for topic_filter in (f"{ROOT}/#", f"{ROOT}/device/+/state", cmd(A)):
        assert may_subscribe(HUB, topic_filter)
        assert may_subscribe(OBS, topic_filter)
    for outside in ("#", "+/v1/#", "legato/v2/x", "legato/v10/x", "$SYS/broker/uptime", "other"):
        assert not may_publish(HUB, outside)
        assert not may_subscribe(HUB, outside)
        assert not may_subscribe(OBS, outside)


def test_observer_named_like_a_device_cannot_publish_as_it() -> None:
    # An observer user name is a valid device id: it must still not own that device's topics.
    for channel in Channel:
        assert not may_publish(OBS, device_topic(OBSERVER, channel))


@pytest.mark.parametrize(
    "topic",
    [
        "",
        f"{ROOT}/device/{A}",
        f"{ROOT}/device/{A}/state/",
        f"/{ROOT}/device/{A}/state",
        f"{ROOT}/device/{A}/state/extra",
        f"{ROOT}/device/{A}/bogus",
        f"{ROOT}/device/{A}/+",
        f"{ROOT}/device/+/state",
        f"{ROOT}/device/#",
        f"{ROOT}/device/{A}\0/state",
        f"{ROOT}/device/{A.upper()}/state",
        f"legato/v2/device/{A}/state",
        f"{ROOT}/devices/{A}/state",
        f"{ROOT}//{A}/state",
    ],
)
def test_malformed_or_foreign_topics_denied_to_speaker(topic: str) -> None:
    assert not may_publish(SPK_A, topic)
    assert not may_subscribe(SPK_A, topic)


@pytest.mark.parametrize("bad", [f"{ROOT}/a#", f"{ROOT}/#/x", f"{ROOT}/a+", f"{ROOT}/+x/y", ""])
def test_invalid_filters_denied_even_to_hub(bad: str) -> None:
    assert not may_subscribe(HUB, bad)
    assert not may_publish(HUB, bad)


def test_no_user_is_denied_everything() -> None:
    assert not may_publish(None, state(A))
    assert not may_subscribe(None, cmd(A))
    assert not may_subscribe(None, f"{ROOT}/#")


def test_broker_user_invariants() -> None:
    with pytest.raises(ValueError, match="hub role"):
        BrokerUser(username=HUB_USERNAME, role="speaker", secret_hash=_HASH)
    with pytest.raises(ValueError, match="hub role"):
        BrokerUser(username="other-hub", role="hub", secret_hash=_HASH)
    for bad_name in ("", "a/b", "a+", "#", "a:b", "a b", "x" * 65):
        with pytest.raises(ValueError, match="user name"):
            BrokerUser(username=bad_name, role="speaker", secret_hash=_HASH)
    with pytest.raises(ValueError, match="hash"):
        BrokerUser(username=A, role="speaker", secret_hash="plaintext")
    with pytest.raises(ValueError, match="role"):
        BrokerUser(username=A, role="admin", secret_hash=_HASH)  # type: ignore[arg-type]
    assert _HASH not in repr(SPK_A)


_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
_ids = st.one_of(
    st.sampled_from([A, B, A.upper(), A + " ", "", "+", "#", f"{A}/x", HUB_USERNAME]),
    st.text(alphabet=_ID_CHARS, min_size=1, max_size=8),
    st.text(max_size=8),
)
_channels = st.one_of(st.sampled_from([c.value for c in Channel]), st.text(max_size=8))
_layout_topics = st.builds(
    lambda root, kind, dev, chan, tail: f"{root}/{kind}/{dev}/{chan}{tail}",
    st.sampled_from([ROOT, "legato/v2", "Legato/v1", "legato/v1/", "", "+/v1", "#"]),
    st.sampled_from(["device", "devices", "+", ""]),
    _ids,
    _channels,
    st.sampled_from(["", "/", "/x", "/#", "\0", "+"]),
)
_topics = st.one_of(_layout_topics, st.text(max_size=40), st.sampled_from(sorted(OWN_PUBLISH_A)))


@settings(max_examples=400)
@given(topic=_topics)
def test_speaker_never_publishes_outside_its_own_topics(topic: str) -> None:
    assert may_publish(SPK_A, topic) == (topic in OWN_PUBLISH_A)
    assert may_subscribe(SPK_A, topic) == (topic == cmd(A))
    assert not may_publish(OBS, topic)
    if may_publish(HUB, topic):
        assert topic == ROOT or topic.startswith(ROOT + "/")
        assert "+" not in topic
        assert "#" not in topic


# --- hashes -------------------------------------------------------------------------


def test_hash_round_trip() -> None:
    secret = new_secret()
    assert len(secret) >= 43
    hashed = hash_secret(secret)
    prefix, seven, iterations, salt, digest = hashed.split("$")
    assert (prefix, seven, iterations) == ("", "7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64
    assert verify_secret(secret, hashed)
    assert not verify_secret(secret + "x", hashed)
    assert not verify_secret("", hashed)
    assert hash_secret(secret) != hashed  # random salt
    assert hash_secret(secret, salt=b"0" * 12) == hash_secret(secret, salt=b"0" * 12)
    slow = hash_secret("sécret ✓", iterations=2000)
    assert slow.startswith("$7$2000$")
    assert verify_secret("sécret ✓", slow)
    with pytest.raises(ValueError, match="iterations"):
        hash_secret(secret, iterations=0)
    with pytest.raises(ValueError, match="12 bytes"):
        hash_secret(secret, salt=b"0" * 16)


def test_verify_accepts_a_mosquitto_passwd_hash(tmp_path: Path) -> None:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.fail(
            "mosquitto_passwd not installed: make test installs it (scripts/install-system-deps.sh)"
        )
    secret = new_secret()
    passwd = tmp_path / "passwd"
    subprocess.run(
        [exe, "-c", "-b", str(passwd), A, secret], check=True, capture_output=True, timeout=10
    )
    username, hashed = passwd.read_text().strip().split(":", 1)
    assert username == A
    assert hashed.startswith("$7$")
    assert verify_secret(secret, hashed)
    assert not verify_secret(new_secret(), hashed)
    BrokerUser(username=A, role="speaker", secret_hash=hashed)  # accepted as a stored hash


def test_malformed_hashes_are_false_not_errors() -> None:
    good = hash_secret("s")
    _, _, iterations, salt, digest = good.split("$")
    short_digest = base64.b64encode(b"\0" * 32).decode()
    for bad in [
        "",
        "$7$",
        "$7$101$",
        f"$6${iterations}${salt}${digest}",
        f"$7$0${salt}${digest}",
        f"$7$-1${salt}${digest}",
        f"$7$abc${salt}${digest}",
        f"$7$99999999999${salt}${digest}",
        f"$7${iterations}$${digest}",
        f"$7${iterations}$!!!${digest}",
        f"$7${iterations}${base64.b64encode(b'0' * 16).decode()}${digest}",  # Mosquitto: 12 only
        f"$7${iterations}${salt}${short_digest}",
        f"$7${iterations}${salt}${digest}$extra",
        f"$7${iterations}${salt}${digest[:-2]}",
        f"$7$\u0661\u0660\u0661${salt}${digest}",  # Arabic-Indic digits: isdigit() is True
        good.replace("$", ":"),
    ]:
        assert not verify_secret("s", bad), bad
    for not_a_string in (None, b"$7$", 7):
        assert not verify_secret("s", not_a_string)  # type: ignore[arg-type]
    assert verify_secret("s", good)


# --- Mosquitto config files (no process) --------------------------------------------


def test_mosquitto_config_files(tmp_path: Path) -> None:
    users = [
        make_user(HUB_USERNAME, "hub")[0],
        make_user(A, "speaker")[0],
        make_user(OBSERVER, "observer")[0],
    ]
    conf = write_mosquitto_config(tmp_path / "m", port=18830, users=users)
    text = conf.read_text()
    assert "allow_anonymous false" in text.splitlines()
    assert "per_listener_settings false" in text.splitlines()
    assert "listener 18830 127.0.0.1" in text.splitlines()
    for name in ("passwd", "acl"):
        assert stat.S_IMODE(os.stat(conf.parent / name).st_mode) == 0o600
    acl = (conf.parent / "acl").read_text()
    assert "pattern" not in acl
    publish, subscribe = acl_patterns_for_speaker(A)
    blocks = {
        block.splitlines()[0]: block.splitlines()[1:] for block in acl.split("\n\n")[1:] if block
    }
    assert blocks[f"user {HUB_USERNAME}"] == [f"topic readwrite {ROOT}/#"]
    assert blocks[f"user {OBSERVER}"] == [f"topic read {ROOT}/#"]
    assert blocks[f"user {A}"] == [f"topic write {t}" for t in publish] + [
        f"topic read {t}" for t in subscribe
    ]
    passwd = (conf.parent / "passwd").read_text().splitlines()
    assert passwd == [f"{u.username}:{u.secret_hash}" for u in users]
    with pytest.raises(ValueError, match="duplicate"):
        write_mosquitto_config(tmp_path / "d", port=18830, users=[users[1], users[1]])
    with pytest.raises(ValueError, match="host"):
        write_mosquitto_config(tmp_path / "h", port=18830, host="", users=users)


def test_embedded_broker_refuses_unbound_hosts() -> None:
    with pytest.raises(ValueError, match="explicit"):
        EmbeddedBroker("", 1883, NO_USERS.get)
    with pytest.raises(ValueError, match="IPv6"):
        EmbeddedBroker("::1", 1883, NO_USERS.get)


# --- integration: both real brokers ---------------------------------------------------


def _wait_no_new_threads(before: set[threading.Thread], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"leaked threads: {leaked}")
        time.sleep(0.02)


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningBroker]:
    """Either broker with the hub, speakers A and B, and an observer."""
    if request.param == "mosquitto" and not have_mosquitto():
        pytest.fail(
            "mosquitto not installed: make test installs it (scripts/install-system-deps.sh)"
        )
    before = set(threading.enumerate())
    running = start_broker(request.param, tmp_path, USERS)
    try:
        yield running
    finally:
        running.stop()
    _wait_no_new_threads(before)


Connect = Callable[..., MqttClient]


@pytest.fixture
def clients(broker: RunningBroker) -> Iterator[list[MqttClient]]:
    """Clients to close after the test, before the broker stops."""
    made: list[MqttClient] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def connect(broker: RunningBroker, clients: list[MqttClient]) -> Connect:
    """Connect as a known user and insist that it worked."""

    def _connect(username: str, **kwargs: object) -> MqttClient:
        client = client_for(broker, username, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        rc = client.connect()
        assert not rc.is_failure, f"{username} refused: {rc}"
        return client

    return _connect


def _refused(
    broker: RunningBroker, clients: list[MqttClient], username: str | None, password: str | None
) -> int:
    client = MqttClient(
        broker.host, broker.port, f"probe-{time.monotonic_ns()}", username, password
    )
    clients.append(client)
    rc = client.connect()
    assert rc.is_failure, f"{username!r}/{password!r} was let in"
    return rc.value


@pytest.mark.integration
def test_bad_credentials_refused_at_connect(
    broker: RunningBroker, clients: list[MqttClient], connect: Connect
) -> None:
    # paho reports MQTT 3.1.1 CONNACK 4/5 as reason codes 134/135.
    refusals = {134, 135}
    assert _refused(broker, clients, A, "not-the-secret") in refusals
    assert _refused(broker, clients, A, "") in refusals
    assert _refused(broker, clients, A, None) in refusals
    assert _refused(broker, clients, None, None) in refusals  # anonymous
    assert _refused(broker, clients, "spk-unknown", new_secret()) in refusals
    assert _refused(broker, clients, HUB_USERNAME, broker.secrets[A]) in refusals
    connect(A)  # control: the right secret works


@pytest.mark.integration
def test_speaker_cannot_publish_for_another_device(broker: RunningBroker, connect: Connect) -> None:
    hub = connect(HUB_USERNAME)
    hub.subscribe(f"{ROOT}/#")
    spk_b = connect(B)
    spk_b.subscribe(cmd(B))
    spk_a = connect(A)
    spk_a.publish(cmd(B), b"forged-cmd")
    spk_a.publish(state(B), b"forged-state")
    spk_a.publish(cmd(A), b"own-cmd")  # not even its own cmd
    spk_a.publish("elsewhere/topic", b"outside")
    spk_a.publish(state(A), b"control")
    assert hub.wait_for(state(A), b"control")
    time.sleep(GRACE)
    assert [m.topic for m in hub.received] == [state(A)]
    assert spk_b.received == []


@pytest.mark.integration
def test_speaker_cannot_read_another_devices_cmd(broker: RunningBroker, connect: Connect) -> None:
    spk_b = connect(B)
    spk_b.publish(state(B), b"b-retained", retain=True)
    spk_b.subscribe(cmd(B))
    spk_a = connect(A)
    foreign = [cmd(B), f"{ROOT}/device/+/cmd", f"{ROOT}/device/{B}/#", f"{ROOT}/#", "#"]
    codes = spk_a.subscribe(*foreign, cmd(A))
    assert not codes[-1].is_failure
    if broker.kind == "embedded":
        # amqtt answers 0x80; Mosquitto 2.0 grants v3.1.1 subscriptions and filters delivery.
        assert all(code.is_failure for code in codes[:-1]), codes
    hub = connect(HUB_USERNAME)
    hub.publish(cmd(B), b"for-b")
    hub.publish(cmd(A), b"control")
    assert spk_b.wait_for(cmd(B), b"for-b")
    assert spk_a.wait_for(cmd(A), b"control")
    time.sleep(GRACE)
    assert [(m.topic, m.payload) for m in spk_a.received] == [(cmd(A), b"control")]


@pytest.mark.integration
def test_only_hub_commands_reach_a_speaker(broker: RunningBroker, connect: Connect) -> None:
    spk_b = connect(B)
    spk_b.subscribe(cmd(B))
    observer = connect(OBSERVER)
    observer.subscribe(f"{ROOT}/#")
    spk_a = connect(A)
    spk_a.publish(cmd(B), b"from-a")
    observer.publish(cmd(B), b"from-observer")
    observer.publish(status(OBSERVER), b"observer-posing-as-device")
    hub = connect(HUB_USERNAME)
    hub.publish(cmd(B), b"from-hub")
    assert spk_b.wait_for(cmd(B), b"from-hub")
    assert observer.wait_for(cmd(B), b"from-hub")  # observers do read everything
    time.sleep(GRACE)
    assert spk_b.payloads(cmd(B)) == [b"from-hub"]
    assert [(m.topic, m.payload) for m in observer.received] == [(cmd(B), b"from-hub")]


@pytest.mark.integration
def test_will_on_a_foreign_topic_is_never_delivered(
    broker: RunningBroker, clients: list[MqttClient], connect: Connect
) -> None:
    hub = connect(HUB_USERNAME)
    hub.subscribe(f"{ROOT}/#")
    spk_b = connect(B)
    spk_b.subscribe(cmd(B))
    evil = client_for(broker, A, will=(cmd(B), b"evil-will"))
    clients.append(evil)
    rc = evil.connect()
    if broker.kind == "embedded":
        assert rc.is_failure  # refused at CONNECT
    else:
        assert not rc.is_failure  # Mosquitto accepts, then drops the will on send
        evil.drop_connection()
    good = connect(A, will=(status(A), b"offline"))
    good.drop_connection()
    assert hub.wait_for(status(A), b"offline")  # control: a will on its own topic works
    time.sleep(GRACE)
    assert not hub.has(cmd(B))
    assert spk_b.received == []


@pytest.mark.integration
def test_failed_login_cannot_hijack_a_client_id(
    broker: RunningBroker, clients: list[MqttClient], connect: Connect
) -> None:
    # Stock amqtt 0.12.1 would drop spk-b's subscriptions here, before checking the password.
    spk_b = connect(B, client_id=B)
    spk_b.subscribe(cmd(B))
    for username in (A, B, None):
        intruder = MqttClient(broker.host, broker.port, B, username, "wrong")
        clients.append(intruder)
        assert intruder.connect().is_failure
    for junk in (b"", b"GET / HTTP/1.1\r\n\r\n", b"\x10\xff\xff\xff\xff\x7f"):
        with socket.create_connection((broker.host, broker.port), timeout=5) as raw:
            raw.sendall(junk)
    hub = connect(HUB_USERNAME)
    hub.publish(cmd(B), b"still-yours")
    assert spk_b.wait_for(cmd(B), b"still-yours")


@pytest.mark.integration
def test_a_speaker_cannot_take_over_the_hubs_session(
    broker: RunningBroker, clients: list[MqttClient], connect: Connect
) -> None:
    hub = connect(HUB_USERNAME)
    hub.subscribe(f"{ROOT}/#")
    # A stolen speaker login that claims the hub's client id ...
    thief = MqttClient(broker.host, broker.port, HUB_USERNAME, A, broker.secrets[A])
    clients.append(thief)
    refused = thief.connect().is_failure  # embedded: refused outright
    if not refused:  # Mosquitto: connected, but under its own user name as client id
        thief.publish(status(A), b"thief-online")
    # ... leaves the real hub connected and hearing everything.
    spk_b = connect(B)
    spk_b.publish(status(B), b"b-online")
    assert hub.wait_for(status(B), b"b-online")
    if broker.kind == "embedded":
        assert refused
    else:
        assert broker.mosquitto is not None
        log = broker.mosquitto.log_path.read_text()
        assert f"as spk-a (p2, c1, k30, u'{A}')" in log  # its id became its user name
        assert log.count("listen socket on port") == 1  # only the listener we asked for


@pytest.mark.integration
def test_speaker_added_while_running(
    broker: RunningBroker, clients: list[MqttClient], connect: Connect
) -> None:
    new_id = "spk-new"
    assert _refused(broker, clients, new_id, new_secret()) in {134, 135}
    secret = broker.add_user(new_id, "speaker")
    deadline = time.monotonic() + 5
    while True:  # Mosquitto rereads its files a moment after SIGHUP
        client = MqttClient(broker.host, broker.port, new_id, new_id, secret)
        clients.append(client)
        if not client.connect().is_failure:
            break
        client.close()
        assert time.monotonic() < deadline, "new speaker never accepted"
        time.sleep(0.05)
    hub = connect(HUB_USERNAME)
    hub.subscribe(f"{ROOT}/#")
    client.publish(cmd(A), b"forged")
    client.publish(status(new_id), b"online")
    assert hub.wait_for(status(new_id), b"online")
    time.sleep(GRACE / 4)
    assert not hub.has(cmd(A))


@pytest.mark.integration
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_port_in_use_is_a_clear_error(kind: str, tmp_path: Path) -> None:
    if kind == "mosquitto" and not have_mosquitto():
        pytest.fail(
            "mosquitto not installed: make test installs it (scripts/install-system-deps.sh)"
        )
    before = set(threading.enumerate())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        if kind == "embedded":
            with pytest.raises(BrokerError, match="in use"):
                EmbeddedBroker(LOOPBACK, port, NO_USERS.get).start(timeout=5)
        else:
            conf = write_mosquitto_config(tmp_path, port=port, users=[make_user(A, "speaker")[0]])
            with pytest.raises(BrokerError, match="in use"):
                MosquittoProcess(conf, port=port).start(timeout=5)
    _wait_no_new_threads(before)


@pytest.mark.integration
def test_mosquitto_restart_keeps_port_and_accepts_our_hashes(tmp_path: Path) -> None:
    if not have_mosquitto():
        pytest.fail(
            "mosquitto not installed: make test installs it (scripts/install-system-deps.sh)"
        )
    secret = new_secret()
    users = [
        BrokerUser(username=A, role="speaker", secret_hash=hash_secret(secret, iterations=1)),
        BrokerUser(
            username=HUB_USERNAME,
            role="hub",
            secret_hash=hash_secret(secret, iterations=5000, salt=os.urandom(12)),
        ),
    ]
    proc = start_mosquitto(tmp_path, users)
    try:
        port = proc.port
        proc.restart()
        assert proc.port == port
        assert proc.running
        for username in (A, HUB_USERNAME):
            client = MqttClient(LOOPBACK, port, f"c-{username}", username, secret)
            try:
                assert not client.connect().is_failure, username
            finally:
                client.close()
    finally:
        proc.stop()
    assert not proc.running
