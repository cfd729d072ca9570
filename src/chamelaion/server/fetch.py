"""Download a job's URL input to disk, without letting the URL reach places it must not.

SSRF protection is enforced where it cannot be bypassed: in the connection layer. Each time a
TCP connection is opened, the host is resolved and every address checked; the socket connects to
a checked address (not to a name resolved again later), and the peer it actually reached is
checked once more. Redirects are followed by hand, at most five, each one going through the same
connection layer. Loopback, private, link-local, multicast, reserved and unspecified addresses
are refused unless `allow_private_urls` is set (tests use it for a loopback media server); so
are the IPv6 transition forms that reach an IPv4 host (see `address_allowed`).

`normalized_url` is the one parser of a URL input: the API stores its result, and the worker and
every redirect go through it again, so what is fetched is exactly what was checked. It is the
parser httpx itself uses, plus the refusals httpx leaves to the resolver: a host that "ends in a
number" must be a plain dotted-quad IPv4 address (`0177.0.0.1`, `2130706433`, `0x7f.1` and
`127.1` mean 127.0.0.1 to some resolvers and nothing to others), and the port must exist.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx

MAX_REDIRECTS = 5
MAX_URL = 4096
USER_AGENT = "chamelaion-fetch/1"
# A read waits for data in slices this long, so a deadline or a cancel is noticed while a
# peer sends nothing (or one byte every few seconds).
CHECK_INTERVAL = 0.5

# IPv6 forms that carry an IPv4 address a gateway may forward to: refused outright, as nothing a
# media URL needs lives there (6to4 and Teredo are deprecated tunnels, ::a.b.c.d is the retired
# IPv4-compatible form, 64:ff9b:1::/48 is for local NAT64 networks, ::ffff:0:0:0/96 is SIIT).
_TUNNELS = tuple(
    ipaddress.IPv6Network(net)
    for net in ("2002::/16", "2001::/32", "::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96")
)
# The well-known NAT64 prefix: an IPv6-only host reaches every IPv4-only site through it, so it
# is judged by the IPv4 address in its last 32 bits (64:ff9b::a9fe:a9fe is the metadata service).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchError(Exception):
    """A user-facing reason the download failed (goes after "failed to fetch video: ")."""


def address_allowed(address: str) -> bool:
    """Whether a URL input may make us connect to `address` (a public unicast one only)."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif any(ip in tunnel for tunnel in _TUNNELS):
            return False
    return ip.is_global and not ip.is_multicast


def _ends_in_a_number(host: str) -> bool:
    """The URL standard's test for a host an IPv4 parser claims (`1.2.3.4`, `0x7f.1`, `017`)."""
    last = host.removesuffix(".").rsplit(".", 1)[-1].lower()
    hexadecimal = last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])
    return last.isdigit() or hexadecimal


def normalized_url(text: str) -> str:
    """The canonical form of an absolute http(s) URL input, or ValueError with the reason."""
    if len(text) > MAX_URL or not text.isprintable() or any(ch.isspace() for ch in text):
        raise ValueError("a URL must be printable, without spaces, at most 4096 characters")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from exc
    if url.scheme not in ("http", "https"):
        raise ValueError("only http and https URLs are allowed")
    if not url.host:
        raise ValueError("the URL has no host")
    if ":" not in url.host and _ends_in_a_number(url.host):
        try:
            ipaddress.IPv4Address(url.host)
        except ValueError:
            raise ValueError(f"ambiguous numeric host {url.host}") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"port {url.port} does not exist")
    return str(url)


def literal_address(url: str) -> str | None:
    """The IP address a normalised URL names directly, if it names one rather than a host."""
    host = httpx.URL(url).host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


class _Budget:
    """A total deadline over everything one client does (connects, redirects, every read),
    and the caller's checkpoint (which raises to abandon the transfer, e.g. a cancelled job)."""

    def __init__(self, total_seconds: float | None, checkpoint: Callable[[], None] | None) -> None:
        self._total = total_seconds
        self._deadline = None if total_seconds is None else time.monotonic() + total_seconds
        self._checkpoint = checkpoint

    def remaining(self, timeout: float | None) -> float | None:
        """`timeout` cut to what is left; raises once nothing is (or the checkpoint says so)."""
        if self._checkpoint is not None:
            self._checkpoint()
        if self._deadline is None:
            return timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise FetchError(f"not finished within {self._total:g} s")
        return left if timeout is None else min(timeout, left)


class _BudgetedStream(httpcore.NetworkStream):
    """A connection whose reads wait in short slices, checking the budget between them."""

    def __init__(self, inner: httpcore.NetworkStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        waited = 0.0
        while True:
            left = None if timeout is None else timeout - waited
            wait = self._budget.remaining(left)
            wait = CHECK_INTERVAL if wait is None else min(CHECK_INTERVAL, wait)
            try:
                return self._inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                waited += wait
                if timeout is not None and waited >= timeout:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._budget.remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, self._budget.remaining(timeout))
        return _BudgetedStream(tls, self._budget)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks, and connects to the checked address; then checks the actual peer."""

    def __init__(self, allow_private: bool, budget: _Budget) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._budget = budget

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
                    address, port, self._budget.remaining(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            peer = stream.get_extra_info("socket").getpeername()[0]
            if not self._allow_private and not address_allowed(peer):
                stream.close()
                raise FetchError(f"address of host {host} is not allowed")
            return _BudgetedStream(stream, self._budget)
        raise FetchError(f"cannot connect to {host}") from last_error

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool, budget: _Budget) -> None:
        super().__init__(retries=0)
        # httpx builds its pool without a way to pass a network backend; swap in one that does.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(allow_private, budget),
            max_connections=4,
        )


def guarded_client(
    allow_private: bool,
    timeout: httpx.Timeout,
    total_timeout: float | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> httpx.Client:
    """An HTTP client whose every connection passes the address checks above; it follows no
    redirect by itself (a caller that does must send each hop through it again). Webhook
    deliveries use it too: a webhook URL is as untrusted as a media URL.

    `total_timeout` bounds everything the client does, however slowly a peer trickles data
    (`timeout` bounds each step only); `checkpoint` is called several times a second and may
    raise to abandon the transfer."""
    return httpx.Client(
        transport=_GuardedTransport(allow_private, _Budget(total_timeout, checkpoint)),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,  # an environment proxy would do the connecting, unchecked
        headers={"User-Agent": USER_AGENT},
    )


def download(
    url: str,
    destination: Path,
    max_bytes: int,
    connect_timeout: float,
    read_timeout: float,
    allow_private: bool,
    *,
    total_timeout: float | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> None:
    """Stream `url` to `destination`, or raise FetchError with a reason fit for the user.
    `total_timeout` and `checkpoint`: see `guarded_client`."""
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=5)
    with guarded_client(allow_private, timeout, total_timeout, checkpoint) as client:
        current = _checked(url)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = _checked(current, response.headers["location"])
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


def _checked(url: str | httpx.URL, redirect: str | None = None) -> httpx.URL:
    """`url` (or the `redirect` location relative to it) in its normalised form, or FetchError
    saying why not: a redirect is held to the rules the API held the first URL to."""
    try:
        target = httpx.URL(url) if redirect is None else httpx.URL(url).join(redirect)
        return httpx.URL(normalized_url(str(target)))
    except (ValueError, httpx.InvalidURL) as exc:
        raise FetchError(f"invalid URL ({exc})") from exc


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
