import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
import standardwebhooks
import svix.webhooks

from bridge.delivery import signing

# The vector from the Standard Webhooks reference tests (python/tests/test_webhooks.py).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_time(tz: timezone = UTC) -> datetime:
    return datetime.fromtimestamp(VECTOR_TS, tz=UTC).astimezone(tz)


def test_sign_matches_reference_vector():
    signature = signing.sign(
        msg_id=VECTOR_ID, timestamp=vector_time(), body=VECTOR_BODY, secrets=[VECTOR_SECRET]
    )
    assert signature == VECTOR_SIGNATURE


def test_headers_carry_id_unix_timestamp_and_signature():
    headers = signing.headers(
        msg_id=VECTOR_ID, timestamp=vector_time(), body=VECTOR_BODY, secrets=[VECTOR_SECRET]
    )
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIGNATURE,
    }


@pytest.mark.parametrize("offset", [timedelta(hours=5, minutes=30), timedelta(hours=-8)])
def test_sign_converts_other_zones_to_utc(offset):
    local = vector_time(timezone(offset))
    assert local.utcoffset() == offset  # the same instant, written in another zone
    headers = signing.headers(
        msg_id=VECTOR_ID, timestamp=local, body=VECTOR_BODY, secrets=[VECTOR_SECRET]
    )
    assert headers["webhook-timestamp"] == str(VECTOR_TS)
    assert headers["webhook-signature"] == VECTOR_SIGNATURE


@pytest.mark.parametrize("build", [signing.sign, signing.headers])
def test_sign_rejects_naive_datetime(build):
    naive = datetime(2021, 2, 25, 15, 2, 10)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        build(msg_id=VECTOR_ID, timestamp=naive, body=VECTOR_BODY, secrets=[VECTOR_SECRET])


def test_sign_rotation_each_secret_verifies_alone():
    secrets = [signing.new_secret(), signing.new_secret(), VECTOR_SECRET]
    body = b'{"type":"job.completed"}'
    headers = signing.headers(
        msg_id="evt_1", timestamp=datetime.now(UTC), body=body, secrets=secrets
    )
    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 3
    assert all(part.startswith("v1,") for part in parts)
    for secret, part in zip(secrets, parts, strict=True):
        only_this = {**headers, "webhook-signature": part}
        for candidate in (headers, only_this):
            assert standardwebhooks.Webhook(secret).verify(body, candidate) == {
                "type": "job.completed"
            }
            svix.webhooks.Webhook(secret).verify(body, candidate)


def test_sign_signature_fails_for_unknown_secret_and_altered_body():
    body = b'{"a":1}'
    headers = signing.headers(
        msg_id="evt_1", timestamp=datetime.now(UTC), body=body, secrets=[signing.new_secret()]
    )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(signing.new_secret()).verify(body, headers)


def test_sign_requires_a_secret():
    with pytest.raises(ValueError, match="at least one"):
        signing.sign(msg_id="evt_1", timestamp=datetime.now(UTC), body=b"{}", secrets=[])


def test_new_secret_is_whsec_and_24_random_bytes():
    first, second = signing.new_secret(), signing.new_secret()
    assert first != second
    for secret in (first, second):
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
        signing.check_secret(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_",  # empty key
        "whsec_not base64!!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La*aSw",
    ],
)
def test_check_secret_refuses_malformed_without_echoing_it(secret):
    with pytest.raises(ValueError) as raised:
        signing.check_secret(secret)
    key = secret.removeprefix("whsec_")
    assert not key or key not in str(raised.value)
    with pytest.raises(ValueError):
        signing.sign(msg_id="evt_1", timestamp=datetime.now(UTC), body=b"{}", secrets=[secret])


def test_check_secret_accepts_unpadded_base64():
    signing.check_secret("whsec_" + base64.b64encode(b"12345").decode().rstrip("="))
