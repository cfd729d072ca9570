"""What the SDK's live tests add to the shared harness (`realserver`): a proxy that breaks
downloads half way, and `Live`, a running server with a key, as SDK clients see it."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chamelaion import AsyncChamelaion, Chamelaion
from realserver import Key, Server, create_key

LIVE_UPLOAD_CAP = 8 * 1024 * 1024  # the upload cap of the `live_api` server


class CuttingProxy:
    """A TCP proxy on loopback to ``target_port`` that can break a download half way.

    Set ``cut_after`` to a byte count: the next connection is closed after that many bytes of
    response (headers included). ``heads`` records the head of each request that passed through.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_after: int | None = None
        self.heads: list[str] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            limit, self.cut_after = self.cut_after, None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return

        def requests() -> None:
            try:
                while data := client.recv(65536):
                    if data[:4] in (b"GET ", b"HEAD", b"POST"):
                        self.heads.append(data.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                with suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=requests, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    client.sendall(data[: limit - sent])
                    break  # cut: close both sides mid-response
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@dataclass
class Live:
    """A running server, a key on a fresh account, and a loopback media server."""

    server: Server
    key: Key
    media_url: str
    proxy: CuttingProxy | None = None  # where output URLs point, if set

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def new_key(self, *options: str) -> Key:
        return create_key(self.data_dir, "sdk-test", *options)

    def client(self, key: Key | str | None = None, **kwargs: Any) -> Chamelaion:
        api_key = key.key if isinstance(key, Key) else (key or self.key.key)
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("base_url", self.server.sdk_base_url)
        return Chamelaion(api_key=api_key, **kwargs)

    def async_client(self, key: Key | str | None = None, **kwargs: Any) -> AsyncChamelaion:
        api_key = key.key if isinstance(key, Key) else (key or self.key.key)
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("base_url", self.server.sdk_base_url)
        return AsyncChamelaion(api_key=api_key, **kwargs)
