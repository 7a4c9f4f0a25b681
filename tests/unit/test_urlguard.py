import ipaddress
import re
import socket

import pytest

from bridge.delivery.urlguard import UnsafeURL, check_url, check_url_syntax


async def no_dns(host, port):
    raise AssertionError(f"unexpected DNS lookup of {host}:{port}")


def resolver(table):
    calls = []

    async def resolve(host, port):
        calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.calls = calls
    return resolve


REFUSED_LITERALS = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.0.9", "special-purpose"),
    ("192.0.2.10", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("[::1]", "loopback"),
    ("[::]", "unspecified"),
    ("[fe80::1]", "link-local"),
    ("[fc00::1]", "unique-local"),
    ("[fd12:3456::1]", "unique-local"),
    ("[fec0::1]", "site-local"),
    ("[ff02::1]", "multicast"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:10.0.0.1]", "private"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("[::7f00:1]", "IPv4-compatible"),
    ("[64:ff9b::a00:1]", "private"),
    ("[64:ff9b::7f00:1]", "loopback"),
    ("[64:ff9b:1::a00:1]", "local-use NAT64"),
    ("[2002:0a00:0001::1]", "private"),
    ("[2002:7f00:1::]", "loopback"),
    ("[2001:db8::1]", "documentation"),
    ("[2001::1]", "special-purpose"),
    ("[100::1]", "discard-only"),
    ("[5f00::1]", "reserved"),
    ("127.1", "loopback"),  # legacy forms that inet_aton (and so getaddrinfo) accept
    ("2130706433", "loopback"),
    ("0x7f.0.0.1", "loopback"),
    ("0xa9fea9fe", "link-local"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED_LITERALS)
async def test_check_url_refuses_non_public_literal(host, reason):
    url = f"https://{host}/hook"
    with pytest.raises(UnsafeURL, match=reason):
        await check_url(url, allowed_hosts=[], resolve=no_dns)
    with pytest.raises(UnsafeURL, match=reason):
        check_url_syntax(url, allowed_hosts=[])


@pytest.mark.parametrize(
    "host",
    [
        "93.184.216.34",
        "8.8.8.8",
        "[2606:2800:220:1:248:1893:25c8:1946]",
        "[2001:4860:4860::8888]",
        "[::ffff:93.184.216.34]",
        "[64:ff9b::5db8:d822]",  # NAT64 of 93.184.216.34
        "[2002:5db8:d822::1]",  # 6to4 of 93.184.216.34
    ],
)
async def test_check_url_allows_public_literal(host):
    url = f"https://{host}:8443/hook"
    addresses = await check_url(url, allowed_hosts=[], resolve=no_dns)
    assert addresses == [ipaddress.ip_address(host.strip("[]"))]
    check_url_syntax(url, allowed_hosts=[])


async def test_check_url_resolves_and_returns_public_addresses():
    resolve = resolver(
        {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]}
    )
    addresses = await check_url(
        "https://Hooks.Example.com/x?token=1", allowed_hosts=[], resolve=resolve
    )
    assert addresses == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::1"),
    ]
    assert resolve.calls == [("hooks.example.com", 443)]


async def test_check_url_resolves_with_the_url_port_and_punycode():
    resolve = resolver({"xn--mnchen-3ya.de": ["93.184.216.34"]})
    await check_url("https://münchen.de:8443/", allowed_hosts=[], resolve=resolve)
    assert resolve.calls == [("xn--mnchen-3ya.de", 8443)]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["10.0.0.7"], "private"),
        (["169.254.169.254"], "link-local"),
        (["93.184.216.34", "127.0.0.1"], "loopback"),  # one bad address refuses
        (["2606:2800:220:1::1", "::ffff:192.168.0.1"], "private"),
        (["fe80::1%eth0"], "link-local"),
    ],
)
async def test_check_url_refuses_name_resolving_to_non_public(answers, reason):
    resolve = resolver({"internal.example.com": answers})
    with pytest.raises(UnsafeURL, match=reason) as raised:
        await check_url("https://internal.example.com/hook", allowed_hosts=[], resolve=resolve)
    assert "internal.example.com" in raised.value.reason
    # the cheap check cannot know: it does no DNS
    check_url_syntax("https://internal.example.com/hook", allowed_hosts=[])


@pytest.mark.parametrize("answers", [None, [], ["not-an-address"]])
async def test_check_url_refuses_unresolvable_host(answers):
    table = {} if answers is None else {"nowhere.example.com": answers}
    with pytest.raises(UnsafeURL, match=re.escape("cannot resolve host 'nowhere.example.com'")):
        await check_url("https://nowhere.example.com/", allowed_hosts=[], resolve=resolver(table))


async def test_check_url_default_resolver_uses_system_dns():
    with pytest.raises(UnsafeURL, match="loopback"):
        await check_url("https://localhost/hook", allowed_hosts=[])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.216.34/hook", "must be https"),
        ("http://hooks.example.com/hook", "must be https"),
        ("ftp://hooks.example.com/hook", "must be https"),
        ("file:///etc/passwd", "must be https"),
        ("//hooks.example.com/hook", "must be https"),
        ("hooks.example.com/hook", "must be https"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://user@hooks.example.com/", "user name or password"),
        ("https://@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com\\@127.0.0.1/", "user name or password"),
        ("https:///hook", "no host"),
        ("https://hooks.example.com:99999/", "port"),
        ("https://hooks.example.com:abc/", "not a valid URL"),
        ("https://exa mple.com/", "not a valid host"),
        ("https://%31%32%37.0.0.1/", "not a valid host"),
        ("https://[fe80::1%25eth0]/", "not a valid host"),
    ],
)
async def test_check_url_refuses_malformed(url, reason):
    with pytest.raises(UnsafeURL, match=reason):
        check_url_syntax(url, allowed_hosts=[])
    with pytest.raises(UnsafeURL, match=reason):
        await check_url(url, allowed_hosts=[], resolve=no_dns)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9000/hook", ["127.0.0.1"]),
        ("http://127.0.0.1:9000/hook", ["127.0.0.1:9000"]),
        ("https://10.0.0.5/hook", ["10.0.0.5"]),
        ("http://LocalHost/hook", ["localhost"]),
        ("http://localhost./hook", ["LOCALHOST"]),
        ("http://[::1]:9000/hook", ["::1"]),
        ("http://[::1]:9000/hook", ["[::1]:9000"]),
        ("http://receiver.internal/hook", ["receiver.internal"]),
    ],
)
async def test_check_url_allowed_hosts_are_exempt(url, allowed):
    assert await check_url(url, allowed_hosts=allowed, resolve=no_dns) == []
    check_url_syntax(url, allowed_hosts=allowed)


@pytest.mark.parametrize(
    ("url", "allowed", "reason"),
    [
        ("http://127.0.0.1:9000/hook", ["127.0.0.1:9001"], "https"),  # another port
        ("http://127.0.0.1:9000/hook", ["localhost"], "https"),  # names are not resolved
        ("https://127.0.0.1:9000/hook", ["127.0.0.2"], "loopback"),
        ("https://127.1/hook", ["127.0.0.1"], "loopback"),
        ("http://user@127.0.0.1:9000/hook", ["127.0.0.1"], "user name"),
        ("ftp://127.0.0.1/hook", ["127.0.0.1"], "https"),
    ],
)
async def test_check_url_allowed_hosts_match_exactly(url, allowed, reason):
    with pytest.raises(UnsafeURL, match=reason):
        await check_url(url, allowed_hosts=allowed, resolve=no_dns)


def test_unsafe_url_carries_reason():
    error = UnsafeURL("the URL scheme must be https")
    assert error.reason == str(error) == "the URL scheme must be https"
