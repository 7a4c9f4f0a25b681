"""The config `photo-bridge dev` writes: loopback only, fresh secrets, readable by its owner alone."""

from __future__ import annotations

from bridge.config import Config, load_config
from bridge.delivery.signing import check_secret
from bridge.devtools.dev import DevSecrets, dev_config, write_private


def test_dev_config_loads_and_keeps_everything_on_loopback(tmp_path):
    creds = DevSecrets.generate(operators="operators" in Config.model_fields)
    data = dev_config(
        creds=creds, port=8123, sim_url="http://127.0.0.1:8124", db_url="sqlite:///x.db"
    )
    path = write_private(tmp_path / "config.yaml", data)
    config = load_config(path, env={})
    assert path.stat().st_mode & 0o777 == 0o600
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8123)
    assert config.upstream.base_url == "http://127.0.0.1:8124"
    assert config.delivery.allowed_hosts == ["127.0.0.1", "localhost"]
    assert config.clients["shop"].token.get_secret_value() == creds.client_token
    assert config.upstream.accounts["main"].api_key.get_secret_value() == creds.api_key
    [secret] = config.clients["shop"].webhook_secrets
    check_secret(secret.get_secret_value())
    assert ("operators" in data) == ("operators" in Config.model_fields)


def test_dev_secrets_are_fresh_and_well_formed():
    first, second = (DevSecrets.generate(operators=True) for _ in range(2))
    assert first.client_token != second.client_token
    assert first.webhook_secret != second.webhook_secret
    assert first.api_key != second.api_key
    assert first.operator_token is not None and first.operator_token != second.operator_token
    assert first.api_key.startswith("aigen_test_")
    assert len(first.client_token) >= 16 and len(first.operator_token) >= 16
    check_secret(first.webhook_secret)
    assert DevSecrets.generate(operators=False).operator_token is None
