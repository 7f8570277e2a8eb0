"""Plain MQTT only when the operator asks, and then said out loud (log, health page)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from hub.accounts import users
from hub.fleet import pki
from tests.brokers import MqttClient, free_port
from tests.system import System

pytestmark = [pytest.mark.integration]
OPERATOR = "operator-password"


def test_a_plain_broker_port_is_opt_in_and_flagged(tmp_path: Path) -> None:
    system = System(tmp_path, embedded=True)
    users.add_user(system.db, "operator", OPERATOR, admin=True)
    plain = free_port()
    system.start_hub("--mqtt-plain-port", str(plain))
    try:
        token = httpx.post(
            f"{system.url}/api/token",
            data={
                "grant_type": "password",
                "username": "operator",
                "password": "operator-password",
            },
        ).json()["access_token"]
        health = httpx.get(
            f"{system.url}/api/admin/health", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert any(str(plain) in warning for warning in health["insecure"])
        page = httpx.get(f"{system.url}/dashboard/health", cookies={"legato_token": token})
        assert "Not encrypted" in page.text
        assert "not encrypted" in (system.root / "hub.log").read_text()
        # the plain port really is plain MQTT (what the operator asked for)
        client = MqttClient(
            "127.0.0.1", plain, "observer", username="observer", password=system.observer_secret
        )
        assert not client.connect().is_failure
        client.close()
    finally:
        system.stop()


def test_a_hub_speaks_no_plain_mqtt_unless_asked(tmp_path: Path) -> None:
    system = System(tmp_path, embedded=True)
    with system.running():
        client = MqttClient(
            "127.0.0.1",
            system.mqtt_port,
            "observer",
            username="observer",
            password=system.observer_secret,
        )
        with pytest.raises(TimeoutError):  # the TLS port never answers plain MQTT
            client.connect(timeout=3)
        client.close()


def test_the_web_api_over_https_with_the_operators_certificate(tmp_path: Path) -> None:
    """``--tls-cert/--tls-key``: browsers and Web API clients get HTTPS on --port."""
    operator = pki.ensure_server_cert(tmp_path / "operator-ca", ["127.0.0.1"])
    system = System(tmp_path, embedded=True, web_ca=operator.ca_cert)
    system.start_hub("--tls-cert", str(operator.cert), "--tls-key", str(operator.key))
    try:
        url = f"https://127.0.0.1:{system.hub_port}/healthz"
        with httpx.Client(verify=ssl.create_default_context(cafile=operator.ca_cert)) as client:
            assert client.get(url).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{system.hub_port}/healthz", timeout=3)
    finally:
        system.stop()
