import hmac
import re

import pytest
from pydantic import SecretStr

from bridge.api import auth
from bridge.api.auth import Principal, bearer_token, identify
from bridge.api.errors import ApiError
from bridge.api.middleware import request_id_from
from bridge.config import ClientConfig, OperatorConfig

CLIENTS = {
    "shop": ClientConfig(token=SecretStr("shop-token-0001"), accounts=["main"]),
    "studio": ClientConfig(token=SecretStr("studio-token-0002"), accounts=["main"]),
}
OPERATORS = {"shop": OperatorConfig(token=SecretStr("ops-token-0003-operator"))}


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([(b"authorization", b"Bearer abc")], b"abc"),
        ([(b"Authorization", b"bearer abc")], b"abc"),
        ([(b"authorization", b"BEARER  abc ")], b"abc"),
        ([(b"x-other", b"1"), (b"authorization", b"Bearer a.b-c_d")], b"a.b-c_d"),
    ],
)
def test_bearer_token_reads_the_token(headers: list[tuple[bytes, bytes]], token: bytes) -> None:
    assert bearer_token(headers) == token


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"")],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"Basic abc")],
        [(b"authorization", b"Bearer a b")],
        [(b"authorization", b"abc")],
        [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
    ],
)
def test_bearer_token_refuses_anything_else(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ApiError) as caught:
        bearer_token(headers)
    assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("token", "who"),
    [
        (b"shop-token-0001", Principal("client", "shop")),
        (b"studio-token-0002", Principal("client", "studio")),
        (b"ops-token-0003-operator", Principal("operator", "shop")),
        (b"shop-token-000", None),
        (b"shop-token-00011", None),
        (b"SHOP-TOKEN-0001", None),
        (b"ops-token-0003-operato", None),
        (b"", None),
        ("shop-token-0001\u00e9".encode(), None),
    ],
)
def test_identify_matches_whole_tokens_only(token: bytes, who: Principal | None) -> None:
    assert identify(token, clients=CLIENTS, operators=OPERATORS) == who


@pytest.mark.parametrize(
    "token", [b"s", b"shop-token-0001", b"x" * 4096], ids=["short", "exact", "long"]
)
def test_identify_compares_equal_lengths_so_timing_tells_no_token_length(
    token: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # compare_digest returns at once on inputs of different lengths (its docs say so), which
    # would let a caller find each configured token's length by timing; digests are all 32 bytes.
    lengths: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        lengths.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    identify(token, clients=CLIENTS, operators=OPERATORS)
    assert len(lengths) == len(CLIENTS) + len(OPERATORS)
    assert set(lengths) == {(32, 32)}


def test_principal_key_keeps_a_client_and_an_operator_of_one_name_apart() -> None:
    assert Principal("client", "shop").key != Principal("operator", "shop").key


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (b"abc-123", True),
        (b"a b:c/d?e=f", True),
        (b"x" * 160, True),
        (b"x" * 161, False),
        (b"", False),
        (b"caf\xc3\xa9", False),
        (b"a\tb", False),
        (b"a\x7fb", False),
    ],
)
def test_request_id_keeps_only_short_printable_ids(given: bytes, kept: bool) -> None:
    found = request_id_from([(b"x-request-id", given)])
    if kept:
        assert found == given.decode()
    else:
        assert re.fullmatch(r"req_[0-9a-f]{24}", found)
