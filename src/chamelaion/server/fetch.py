"""Download a job's URL input to disk, without letting the URL reach places it must not.

SSRF protection is enforced where it cannot be bypassed: in the connection layer. Each time a
TCP connection is opened, the host is resolved and every address checked; the socket connects to
a checked address (not to a name resolved again later), and the peer it actually reached is
checked once more. Redirects are followed by hand, at most five, each one going through the same
connection layer. Loopback, private, link-local, multicast, reserved and unspecified addresses
are refused unless `allow_private_urls` is set (tests use it for a loopback media server).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx

MAX_REDIRECTS = 5
USER_AGENT = "chamelaion-fetch/1"


class FetchError(Exception):
    """A user-facing reason the download failed (goes after "failed to fetch video: ")."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks, and connects to the checked address; then checks the actual peer."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(f"cannot resolve host {host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self._allow_private:
            addresses = [address for address in addresses if address_allowed(address)]
            if not addresses:
                raise FetchError(f"address of host {host} is not allowed")
        last_error: Exception | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            peer = stream.get_extra_info("socket").getpeername()[0]
            if not self._allow_private and not address_allowed(peer):
                stream.close()
                raise FetchError(f"address of host {host} is not allowed")
            return stream
        raise FetchError(f"cannot connect to {host}") from last_error

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool) -> None:
        super().__init__(retries=0)
        # httpx builds its pool without a way to pass a network backend; swap in one that does.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(allow_private),
            max_connections=4,
        )


def download(
    url: str,
    destination: Path,
    max_bytes: int,
    connect_timeout: float,
    read_timeout: float,
    allow_private: bool,
) -> None:
    """Stream `url` to `destination`, or raise FetchError with a reason fit for the user."""
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=5)
    with httpx.Client(
        transport=_GuardedTransport(allow_private),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,  # an environment proxy would do the connecting, unchecked
        headers={"User-Agent": USER_AGENT},
    ) as client:
        current = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            if current.scheme not in ("http", "https"):
                raise FetchError("only http and https URLs are allowed")
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = current.join(response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"HTTP {response.status_code}")
                    _save(response, destination, max_bytes)
                    return
            except FetchError:
                destination.unlink(missing_ok=True)
                raise
            except httpx.TimeoutException as exc:
                destination.unlink(missing_ok=True)
                raise FetchError("timed out") from exc
            except httpx.HTTPError as exc:  # protocol errors, resets mid-body, ...
                destination.unlink(missing_ok=True)
                raise FetchError(f"connection failed ({type(exc).__name__})") from exc
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _save(response: httpx.Response, destination: Path, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("file too large")
    received = 0
    with destination.open("wb") as handle:
        for chunk in response.iter_bytes(256 * 1024):
            received += len(chunk)
            if received > max_bytes:
                raise FetchError("file too large")
            handle.write(chunk)
