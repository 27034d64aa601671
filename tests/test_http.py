"""The outbound HTTP client's SSRF guard."""

from __future__ import annotations

import http.server
import threading

import pytest

from loket import http as loket_http


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.5",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "224.0.0.1",
    ],
)
def test_private_and_reserved_addresses_are_blocked(address):
    assert not loket_http.address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address):
    assert loket_http.address_allowed(address, allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254 (cloud metadata)
        "64:ff9b::a00:1",  # NAT64 -> 10.0.0.1
        "64:ff9b:1::7f00:1",  # NAT64 local-use prefix -> 127.0.0.1
        "64:ff9b:1::5db8:d822",  # local-use prefix is never global, even around a public IPv4
        "2002:7f00:1::",  # 6to4 -> 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 -> 169.254.169.254
        "2001:0:5db8:d822:0:0:f5ff:fffe",  # Teredo, public server, client 10.0.0.1
        "2001:0:7f00:1:0:0:a245:2bdd",  # Teredo, server 127.0.0.1, public client
        "::7f00:1",  # IPv4-compatible (deprecated ::/96) -> 127.0.0.1
        "::a00:1",  # IPv4-compatible -> 10.0.0.1
        "::ffff:169.254.169.254",  # IPv4-mapped metadata
        "64:ff9b::e000:1",  # NAT64 -> 224.0.0.1 (multicast)
    ],
)
def test_ipv6_addresses_embedding_a_private_ipv4_are_blocked(address):
    assert not loket_http.address_allowed(address, allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "64:ff9b::5db8:d822",  # NAT64 to a public IPv4 (how IPv6-only hosts reach the internet)
        "2002:5db8:d822::1",  # 6to4 around a public IPv4
        "::ffff:93.184.216.34",  # IPv4-mapped public
        "8.8.8.8",
    ],
)
def test_ipv6_and_ipv4_public_addresses_stay_allowed(address):
    assert loket_http.address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["64:ff9b::", "::", "2002::1", "64:ff9b::e000:1"])
def test_embedded_unspecified_or_multicast_is_blocked_even_when_private_is_allowed(address):
    assert not loket_http.address_allowed(address, allow_private=True)


def test_embedded_private_ipv4_is_allowed_when_the_operator_allows_private():
    assert loket_http.address_allowed("64:ff9b::a00:1", allow_private=True)
    assert loket_http.address_allowed("::1", allow_private=True)


def test_the_operator_can_allow_private_addresses_but_never_unspecified_ones():
    assert loket_http.address_allowed("127.0.0.1", allow_private=True)
    assert not loket_http.address_allowed("0.0.0.0", allow_private=True)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()


def test_a_request_to_loopback_is_refused_at_connect_time(local_server, settings):
    settings.LOKET_HTTP_ALLOW_PRIVATE = False
    with loket_http.client() as client, pytest.raises(loket_http.BlockedAddress) as caught:
        client.get(local_server)
    assert "private or reserved" in str(caught.value)


def test_a_request_to_loopback_works_when_allowed(local_server, settings):
    settings.LOKET_HTTP_ALLOW_PRIVATE = True
    with loket_http.client() as client:
        assert client.get(local_server).text == "hello"


def test_retry_after_is_read_in_seconds_and_as_a_date():
    import httpx

    assert loket_http.retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7
    dated = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert loket_http.retry_after_seconds(dated) == 0.0
    assert loket_http.retry_after_seconds(httpx.Response(503)) is None
