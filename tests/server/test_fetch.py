"""Fetching URL inputs: size cap, redirects, errors, and refusing non-public addresses."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from chamelaion.server.fetch import FetchError, address_allowed, download, normalized_url
from server.helpers import MediaServer, dripping_server

# The fetcher never touches the database: test-postgres leaves these out.
pytestmark = pytest.mark.store_independent


def fetch(url: str, destination: Path, allow_private: bool = True, max_bytes: int = 10**8) -> None:
    download(url, destination, max_bytes, 2.0, 2.0, allow_private)


def test_downloads_a_file(media_server: MediaServer, short_speech: Path, tmp_path: Path) -> None:
    fetch(media_server.url(short_speech), tmp_path / "audio")
    assert (tmp_path / "audio").read_bytes() == short_speech.read_bytes()


def test_follows_up_to_five_redirects(
    media_server: MediaServer, short_speech: Path, tmp_path: Path
) -> None:
    fetch(media_server.url(f"redirect/5/{short_speech.name}"), tmp_path / "audio")
    assert (tmp_path / "audio").read_bytes() == short_speech.read_bytes()


def test_refuses_a_sixth_redirect(
    media_server: MediaServer, short_speech: Path, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(media_server.url(f"redirect/6/{short_speech.name}"), tmp_path / "audio")


def test_http_error_status(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^HTTP 404$"):
        fetch(media_server.url("missing.mp4"), tmp_path / "video")
    assert not (tmp_path / "video").exists()


def test_size_cap(media_server: MediaServer, short_speech: Path, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="file too large"):
        fetch(media_server.url(short_speech), tmp_path / "audio", max_bytes=1000)
    assert not (tmp_path / "audio").exists()


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(FetchError, match="cannot connect"):
        fetch(f"http://127.0.0.1:{port}/x.mp4", tmp_path / "video")


def test_read_timeout(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        with pytest.raises(FetchError, match="timed out"):
            fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/slow.mp4", tmp_path / "v")
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


def test_server_hanging_up_is_a_connection_failure(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(FetchError, match=r"connection failed \(RemoteProtocolError\)"):
            fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/x.mp4", tmp_path / "v")
    finally:
        listener.close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "10.1.2.3", "192.168.0.10", "169.254.169.254", "0.0.0.0"],
)
def test_refuses_non_public_addresses(host: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="is not allowed"):
        fetch(f"http://{host}:9/x.mp4", tmp_path / "video", allow_private=False)


def test_refuses_a_redirect_to_another_scheme(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        fetch(media_server.url("goto/file:%2F%2F%2Fetc%2Fpasswd"), tmp_path / "video")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("fe80::1", False),
        ("fc00::1", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        # IPv6 transition forms: NAT64 is judged by the IPv4 address it carries ...
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("64:ff9b::7f00:1", False),  # NAT64 of loopback
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: how an IPv6-only host reaches it
        # ... the rest are refused whatever they carry
        ("64:ff9b:1::808:808", False),  # local-use NAT64
        ("2002:a9fe:a9fe::1", False),  # 6to4
        ("2002:808:808::1", False),
        ("::a9fe:a9fe", False),  # IPv4-compatible
        ("::808:808", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("::ffff:0:808:808", False),  # IPv4-translated (SIIT)
    ],
)
def test_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("HTTP://Example.COM/a?b=c", "http://example.com/a?b=c"),
        ("https://bücher.de/ä", "https://xn--bcher-kva.de/%C3%A4"),
        ("http://8.8.8.8:8080/x", "http://8.8.8.8:8080/x"),
        ("http://[2606:4700::1111]/x", "http://[2606:4700::1111]/x"),
    ],
)
def test_urls_have_one_normal_form(given: str, normal: str) -> None:
    assert normalized_url(given) == normal
    assert normalized_url(normal) == normal  # the worker's pass changes nothing


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://1.2.3.04/",
        "http://a:99999/",
        "ftp://a/b",
        "http:///nohost",
        "http://a b/",
        "http://a/\x00",
    ],
)
def test_ambiguous_or_broken_urls_have_none(url: str) -> None:
    with pytest.raises(ValueError):
        normalized_url(url)


def test_a_url_httpx_cannot_parse_is_a_fetch_error(tmp_path: Path) -> None:
    """Such a URL once reached the worker and failed with an unhandled httpx.InvalidURL."""
    with pytest.raises(FetchError, match="invalid URL"):
        fetch("http://0177.0.0.1/x.mp4", tmp_path / "video")


@pytest.mark.parametrize("location", ["http://0177.0.0.1/x.mp4", "http://2130706433/x.mp4"])
def test_a_redirect_is_held_to_the_same_rules(
    media_server: MediaServer, tmp_path: Path, location: str
) -> None:
    """(httpx itself refuses the first as a protocol error; the second only we refuse.)"""
    with pytest.raises(FetchError, match=r"invalid URL|Invalid URL|RemoteProtocolError"):
        fetch(media_server.url("goto/" + location.replace("/", "%2F")), tmp_path / "video")


def test_a_name_is_resolved_once_per_connection_and_that_answer_is_used(
    media_server: MediaServer, short_speech: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DNS-rebinding window: a resolver that gives another answer the second time (here a
    stand-in for a rebinding DNS server, which cannot run on this machine) is asked once, and
    the connection goes to its first answer, the one that was checked."""
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host: str, port: int, *args: object, **kwargs: object) -> object:
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
        asked.append(host)
        answer = "127.0.0.1" if len(asked) == 1 else "127.0.0.2"  # nothing listens there
        return real_getaddrinfo(answer, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = media_server.base_url.rsplit(":", 1)[1]
    fetch(f"http://rebind.test:{port}/{short_speech.name}", tmp_path / "audio")
    assert (tmp_path / "audio").read_bytes() == short_speech.read_bytes()
    assert asked == ["rebind.test"]


def test_total_deadline_cuts_off_a_server_that_drips(tmp_path: Path) -> None:
    """Each read gets a byte well within the read timeout; only the total deadline ends it."""
    started = time.monotonic()
    with dripping_server() as url, pytest.raises(FetchError, match=r"^not finished within 1.5 s$"):
        download(url, tmp_path / "video", 10**8, 2.0, 2.0, True, total_timeout=1.5)
    assert time.monotonic() - started < 4
    assert not (tmp_path / "video").exists()


def test_a_checkpoint_abandons_a_transfer_while_the_server_sends_nothing(tmp_path: Path) -> None:
    class AbandonedError(Exception):
        pass

    calls = 0

    def checkpoint() -> None:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise AbandonedError

    started = time.monotonic()
    with dripping_server(interval=60) as url, pytest.raises(AbandonedError):
        download(url, tmp_path / "video", 10**8, 2.0, 30.0, True, checkpoint=checkpoint)
    assert time.monotonic() - started < 5  # not the 30 s read timeout
