"""A loopback TCP proxy that injects network faults between a client and a server.

    with FaultProxy(("127.0.0.1", 6000), ("127.0.0.2", 6000)) as p:
        p.cut()          # reset every open connection and refuse new ones (the cable is pulled)
        p.blackhole()    # stop forwarding but keep the sockets open (a dead switch / Wi-Fi stall)
        p.delay_s = 0.1  # every chunk arrives this much later
        p.reorder = 0.3  # probability that a chunk swaps places with the next one
        p.duplicate = 0.1; p.garbage = 0.1   # a chunk sent twice; random bytes inserted
        p.heal()         # forward normally again

Real sockets and threads: one acceptor, and per connection one pump per direction.
ZMQ is framed over TCP, so reordering, duplicating or inserting bytes corrupts the
stream: what a test asserts is that both ends survive it (drop the peer, reconnect).
"""
from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
from collections import deque


class FaultProxy:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int], seed: int = 0) -> None:
        self.target = target
        self.delay_s = 0.0
        self.reorder = self.duplicate = self.garbage = 0.0
        self._rng = random.Random(seed)
        self._refusing = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._lock = threading.Lock()
        self._conns: list[tuple[socket.socket, socket.socket]] = []
        self.accepted = self.refused = self.chunks = 0
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(listen)
        self._srv.listen(64)
        self._srv.settimeout(0.05)
        self.address = self._srv.getsockname()
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()

    # ----- faults -----
    def cut(self) -> None:
        """Reset every open connection (RST, as when a link drops) and refuse new ones until `heal`."""
        self._refusing = True
        self._flowing.set()
        with self._lock:
            conns, self._conns = self._conns, []
        for a, b in conns:
            _reset(a)
            _reset(b)

    def blackhole(self) -> None:
        """Forward nothing; keep every socket open (bytes wait in the kernel's buffers)."""
        self._flowing.clear()

    def heal(self) -> None:
        self._refusing = False
        self.delay_s = self.reorder = self.duplicate = self.garbage = 0.0
        self._flowing.set()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # ----- plumbing -----
    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._srv.accept()
            except (socket.timeout, OSError):
                continue
            if self._refusing:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=1.0)
            except OSError:
                _reset(client)
                continue
            self.accepted += 1
            for s in (client, upstream):
                s.settimeout(5.0)  # a send to a peer that stopped reading gives up eventually
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.append((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        held: bytes | None = None  # a chunk kept back to swap with the next one
        pending: deque[tuple[float, bytes]] = deque()
        try:
            while not self._closed:
                if not self._flowing.is_set():
                    self._flowing.wait(0.05)
                    continue
                wait = 0.05 if not pending else min(0.05, max(0.0, pending[0][0] - time.monotonic()))
                data = src.recv(65536) if select.select([src], [], [], wait)[0] else None
                if data == b"":
                    break
                if data is None and held is not None:  # nothing followed: the held chunk arrives late
                    pending.append((time.monotonic() + self.delay_s, held))
                    held = None
                if data:
                    self.chunks += 1
                    out = [data]
                    if self._rng.random() < self.duplicate:
                        out.append(data)
                    if self._rng.random() < self.garbage:
                        out.insert(self._rng.randrange(2), self._rng.randbytes(self._rng.randint(1, 64)))
                    if held is not None:
                        out, held = out + [held], None
                    elif self._rng.random() < self.reorder:
                        held, out = b"".join(out), []
                    due = time.monotonic() + self.delay_s
                    pending.extend((due, c) for c in out)
                while pending and pending[0][0] <= time.monotonic() and self._flowing.is_set():
                    dst.sendall(pending.popleft()[1])
        except (OSError, ValueError):  # the socket was reset under us (cut / close)
            pass
        finally:
            _reset(src)
            _reset(dst)
            with self._lock:
                self._conns = [c for c in self._conns if src not in c]

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self.cut()
        self._thread.join(2)
        self._srv.close()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset(s: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN, as a dropped link looks to the peer."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
