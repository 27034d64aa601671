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
