"""The SSRF address policy and URL rules (items 113, 199, 200): which targets outbound calls
may reach. Pure checks: nothing here opens a connection."""

from __future__ import annotations

import pytest

from backchannel.outbound import (
    AddressPolicy,
    OutboundError,
    OutboundRefused,
    StaticResolver,
    check_url,
    checked_url,
)
from backchannel.settings import Settings
from tests.support.provider import make_settings

pytestmark = pytest.mark.anyio

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.1", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("fc00::5", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "non-public"),
    # IPv4 hidden in IPv6 is judged as the IPv4 it carries.
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("64:ff9b::a00:1", "private"),
    ("2002:a00:1::", "private"),
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"]


def settings(dev_mode: bool = False, allow_list: list[str] | None = None) -> Settings:
    return make_settings(dev_mode=dev_mode, outbound={"allow_list": allow_list or []})


@pytest.mark.parametrize(("address", "category"), REFUSED)
def test_item_200_internal_addresses_are_refused(address: str, category: str) -> None:
    reason = AddressPolicy(dev_mode=False).refusal("hook.example.test", address)
    assert reason == f"hook.example.test resolves to {_a(category)} {category} address {address}"


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy(dev_mode=False).refusal("hook.example.test", address) is None


def test_dev_mode_allows_loopback_only() -> None:
    policy = AddressPolicy(dev_mode=True)
    assert policy.refusal("localhost", "127.0.0.1") is None
    assert policy.refusal("localhost", "::1") is None
    assert policy.refusal("x.test", "10.0.0.1") is not None
    assert policy.refusal("x.test", "169.254.169.254") is not None


def test_allow_listed_cidr_passes_and_nothing_else() -> None:
    policy = AddressPolicy(dev_mode=False, allow_list=["10.1.0.0/16", "fd12::/16", "192.168.7.7"])
    assert policy.refusal("gw.internal.test", "10.1.2.3") is None
    assert policy.refusal("gw.internal.test", "::ffff:10.1.2.3") is None
    assert policy.refusal("gw.internal.test", "fd12::9") is None
    assert policy.refusal("gw.internal.test", "192.168.7.7") is None
    assert policy.refusal("gw.internal.test", "10.2.0.1") is not None
    assert policy.refusal("gw.internal.test", "192.168.7.8") is not None


def test_allow_listed_host_passes_whatever_it_resolves_to() -> None:
    policy = AddressPolicy(dev_mode=False, allow_list=["Notify.Internal.Test"])
    assert policy.refusal("notify.internal.test", "10.9.9.9") is None
    assert policy.refusal("other.internal.test", "10.9.9.9") is not None


def test_every_resolved_address_is_checked() -> None:
    policy = AddressPolicy(dev_mode=False)
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.7"):
        policy.check("mixed.example.test", ["93.184.216.34", "10.0.0.7"])


@pytest.mark.parametrize(
    ("url", "dev_mode"),
    [
        ("http://rp.example.test/cb", True),  # item 113: TLS only, except loopback in dev mode
        ("http://127.0.0.1:9/cb", False),
        ("ftp://rp.example.test/cb", True),
        ("/relative", True),
        ("https://user:pw@rp.example.test/cb", False),
    ],
)
def test_item_113_only_https_urls(url: str, dev_mode: bool) -> None:
    with pytest.raises(OutboundRefused):
        checked_url(url, dev_mode=dev_mode)


def test_plain_http_to_loopback_in_dev_mode() -> None:
    assert checked_url("http://127.0.0.1:9/cb", dev_mode=True) == "127.0.0.1"
    assert checked_url("http://localhost:9/cb", dev_mode=True) == "localhost"
    assert checked_url("https://rp.example.test/cb", dev_mode=False) == "rp.example.test"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://10.0.0.5/cb", "10.0.0.5 is a private address"),
        ("https://169.254.169.254/x", "169.254.169.254 is a cloud metadata address"),
        ("https://127.0.0.1/cb", "127.0.0.1 is a loopback address"),
        ("https://[::ffff:10.0.0.1]/cb", "::ffff:10.0.0.1 is a private address"),
    ],
)
async def test_check_url_refuses_literal_internal_addresses(url: str, expected: str) -> None:
    with pytest.raises(OutboundRefused) as raised:
        await check_url(url, settings=settings(), resolver=StaticResolver({}))
    assert str(raised.value) == expected


async def test_check_url_refuses_names_resolving_inside() -> None:
    resolver = StaticResolver(
        {"hook.example.test": ["10.0.0.1"], "meta.example.test": ["169.254.169.254"]}
    )
    with pytest.raises(OutboundRefused, match=r"private address 10\.0\.0\.1"):
        await check_url("https://hook.example.test/cb", settings=settings(), resolver=resolver)
    with pytest.raises(OutboundRefused, match="cloud metadata address"):
        await check_url("https://meta.example.test/x", settings=settings(), resolver=resolver)


async def test_check_url_accepts_public_and_allow_listed_targets() -> None:
    resolver = StaticResolver({"rp.example.test": ["93.184.216.34"], "gw.test": ["10.0.0.1"]})
    await check_url("https://rp.example.test/cb", settings=settings(), resolver=resolver)
    allowed = settings(allow_list=["10.0.0.0/8"])
    await check_url("https://gw.test/cb", settings=allowed, resolver=resolver)


async def test_unresolvable_name_is_an_error_but_not_a_refusal() -> None:
    with pytest.raises(OutboundError) as raised:
        await check_url("https://nowhere.test/cb", settings=settings(), resolver=StaticResolver({}))
    assert not isinstance(raised.value, OutboundRefused)
    assert raised.value.retryable


def _a(category: str) -> str:
    return "an" if category[0] in "aeiou" else "a"
