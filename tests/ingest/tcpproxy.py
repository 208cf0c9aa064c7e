"""A TCP proxy in front of PostgreSQL or a broker that a test can cut (every connection dropped,
new ones refused) and restore, or make deaf (what clients send is dropped, what servers send
still arrives): real network faults for the outage and delivery tests."""

from __future__ import annotations

import select
import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._deaf = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            for s in list(self._socks):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._socks.clear()

    def restore(self) -> None:
        self._up.set()
        self._deaf.clear()

    def deafen(self) -> None:
        """From now on, bytes from clients are dropped (an MQTT PUBACK never reaches the broker)."""
        self._deaf.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                if self._closed.is_set():
                    break
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if s is a and self._deaf.is_set():
                        continue
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._socks.discard(a)
                self._socks.discard(b)
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
