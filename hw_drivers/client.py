"""`ZmqRobot`: the Robot contract over the network, talking to `corrigo serve`.

    robot = make_robot("zmq://127.0.0.1:5555")                     # or ZmqRobot("127.0.0.1", 5555)
    robot = make_robot("zmq://host:5555?server_key=server.key&client_key=me.key_secret&role=observe")

Requests go over a DEALER socket in lockstep: one request at a time, each with an id,
a timeout on every call, and replies with a stale id (answers to a request that
already timed out) are discarded. State and camera frames arrive on a SUB socket;
`get_observation` uses the newest state there and falls back to a request.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import zmq

import hw_drivers.protocol as P
from hw_drivers.protocol import Err
from hw_drivers.spec import spec_options, truthy
from robot.errors import ActionError, NotConnectedError, RobotError
from robot.robot import Robot
from robot.types import Feature, SceneObject

DEFAULT_PORT = 5555
REPLY_MAX_BYTES = 64 << 20  # per frame: a corrupted length prefix beyond this drops the connection at once
log = logging.getLogger(__name__)
IDEMPOTENT = frozenset({"hello", "features", "ping", "get_observation", "scene"})


class ServerError(RobotError):
    """The server answered with an error reply; `code` is one of protocol.Err."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotControllerError(ServerError):
    pass


class ZmqRobot(Robot):
    """A body served by `corrigo serve`, as a `Robot` (and a `SceneProvider` if the body is one).

    Before `connect()`, `observation_features` / `action_features` open the command
    socket lazily and ask the server (`features`), raising RobotError if it does not
    answer within the timeout: LeRobot's rule that features are valid before connect
    holds whenever the server is up.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, timeout_s: float = 2.0,
                 role: str = "control", takeover: bool = False, subscribe: bool = True,
                 curve_server_key: str | bytes | None = None, curve_client_keys: Any = None,
                 client_name: str = "corrigo-client") -> None:
        if role not in P.ROLES:
            raise RobotError(f"zmq: role must be one of {', '.join(P.ROLES)}, got {role!r}")
        if not timeout_s > 0:
            raise RobotError("zmq: timeout_s must be positive")
        self.host, self.port = host, int(port)
        self.url = f"zmq://{host}:{self.port}"
        self.name = self.url
        self.timeout_s = float(timeout_s)
        self.role_wanted, self.takeover, self.subscribe = role, takeover, subscribe
        self.client_name = client_name
        self._curve = _curve_keys(curve_server_key, curve_client_keys)
        self._ctx: zmq.Context | None = None
        self._dealer: zmq.Socket | None = None
        self._sub: _StateReader | None = None
        self._lock = threading.RLock()  # sockets are single-threaded; consoles may call from other threads
        # stable across socket re-creation, so control survives a reconnect (ids starting with a
        # zero byte are reserved by ZMQ, hence ASCII)
        self._ident = f"corrigo-{uuid.uuid4().hex[:16]}".encode()
        self._req = 0
        self._connected = False
        self.role = "observe"
        self.info: dict[str, Any] = {}
        # The controller's lease lapses after `lease_s` of silence; a caller busy elsewhere (loading
        # models between hello and its first command) must not lose control for it: see _keep_alive.
        self._last_reply = 0.0
        self.reacquired = 0  # times control lapsed (lease) and was taken back transparently
        self._keepalive: threading.Thread | None = None
        self._keepalive_stop = threading.Event()
        self._features: dict[str, Any] | None = None
        self._latest: tuple[dict[str, Any], list[bytes]] | None = None  # newest state message (undecoded frames)
        self._min_tick = 0  # the state must be at least this new (the tick that applied our last command)
        self.control_dt = 0.05
        self.last_reply: dict[str, Any] = {}

    # ----- features -----
    def _feature_info(self) -> dict[str, Any]:
        if self._features is None:
            res, _ = self._call("features")
            try:
                self._features = {
                    "observation_features": P.features_from_wire(res["observation_features"]),
                    "action_features": P.features_from_wire(res["action_features"]),
                    "capabilities": list(res.get("capabilities", [])),
                }
                self.control_dt = float(res["control_dt"])
            except (KeyError, TypeError, ValueError) as e:
                raise RobotError(f"{self.url}: malformed features reply ({e})") from None
        return self._features

    @property
    def observation_features(self) -> dict[str, Feature]:
        return dict(self._feature_info()["observation_features"])

    @property
    def action_features(self) -> dict[str, Feature]:
        return dict(self._feature_info()["action_features"])

    @property
    def capabilities(self) -> list[str]:
        return list(self._feature_info()["capabilities"])

    # ----- lifecycle -----
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        with self._lock:
            if self._connected:
                return
            try:
                self._hello()
            except BaseException:
                self._close_sockets()  # a failed connect leaves nothing open
                raise
            self._connected = True
            if self.role == "control":
                self._start_keep_alive()

    def _start_keep_alive(self) -> None:
        lease = float(self.info.get("lease_s") or 2.0)
        self._keepalive_stop.clear()
        self._keepalive = threading.Thread(target=self._keep_alive, args=(lease / 4,), name="corrigo-zmq-keepalive",
                                           daemon=True)
        self._keepalive.start()

    def _keep_alive(self, every_s: float) -> None:
        """Ping when nothing else was said for `every_s` (a quarter of the lease): any request renews it.
        A call in progress holds the lock and renews the lease itself, so this one waits or skips."""
        while not self._keepalive_stop.wait(every_s):
            if time.monotonic() - self._last_reply < every_s or not self._lock.acquire(timeout=every_s):
                continue
            try:
                if self._connected and not self._keepalive_stop.is_set():
                    self._call("ping", timeout_s=min(self.timeout_s, max(every_s, 0.25)))
            except RobotError:
                pass  # the link is down: the caller's next command says so
            finally:
                self._lock.release()

    def _stop_keep_alive(self) -> None:
        self._keepalive_stop.set()
        t, self._keepalive = self._keepalive, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=self.timeout_s + 1)

    def _hello(self) -> None:
        info, _ = self._call("hello", {"role": self.role_wanted, "takeover": self.takeover, "client": self.client_name})
        if info.get("protocol") != P.PROTOCOL_VERSION:
            raise RobotError(f"{self.url} speaks protocol {info.get('protocol')}, this client {P.PROTOCOL_VERSION}")
        self.info = info
        self.role = str(info.get("role"))
        self.control_dt = float(info.get("control_dt", self.control_dt))
        if self.role_wanted == "control" and self.role != "control":
            raise RobotError(f"{self.url} is controlled by another client; connect with takeover=True "
                             "(zmq://...?takeover=1) to take control, or role='observe' to watch")
        self._feature_info()
        if self.subscribe:
            self._open_sub(info)

    def disconnect(self) -> None:
        self._stop_keep_alive()  # outside the lock: the pinger may be waiting for it
        with self._lock:
            if self._connected and self.role == "control" and self._dealer is not None:
                try:  # hand control back at once instead of waiting for the lease to expire
                    self._call("release", timeout_s=min(self.timeout_s, 0.5))
                except RobotError:
                    pass
            self._connected = False
            self.role = "observe"
            self._close_sockets()

    def _close_sockets(self) -> None:
        with self._lock:
            if self._sub is not None:
                self._sub.close()
            if self._dealer is not None:
                self._dealer.close(0)
            self._dealer = self._sub = None
            if self._ctx is not None:
                self._ctx.term()
                self._ctx = None

    def _context(self) -> zmq.Context:
        if self._ctx is None:
            self._ctx = zmq.Context()
        return self._ctx

    def _socket(self, kind: int) -> zmq.Socket:
        s = self._context().socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 100)  # libzmq reconnects by itself, backing off 0.1 s -> 2 s
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        s.setsockopt(zmq.MAXMSGSIZE, REPLY_MAX_BYTES)
        if self._curve is not None:
            server_pub, client_pub, client_secret = self._curve
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_pub, client_pub, client_secret
        return s

    def _open_dealer(self) -> zmq.Socket:
        if self._dealer is None:
            d = self._socket(zmq.DEALER)
            d.setsockopt(zmq.ROUTING_ID, self._ident)
            d.setsockopt(zmq.SNDHWM, 16)
            d.connect(f"tcp://{self.host}:{self.port}")
            self._dealer = d
        return self._dealer

    def _reset_dealer(self) -> None:
        # "lazy pirate": after a timeout the socket may hold a queued request; start clean
        if self._dealer is not None:
            self._dealer.close(0)
            self._dealer = None

    def _open_sub(self, info: Mapping[str, Any]) -> None:
        port = info.get("pub_port")
        if not isinstance(port, int):
            return  # the server publishes somewhere we cannot infer: requests only
        s = self._socket(zmq.SUB)
        s.setsockopt(zmq.RCVHWM, 2)  # bounded; CONFLATE cannot be used with multipart messages
        s.setsockopt(zmq.SUBSCRIBE, P.STATE_TOPIC)
        endpoint = f"tcp://{self.host}:{port}"
        s.connect(endpoint)
        self._sub = _StateReader(s, endpoint, stale_s=max(1.0, 20 * self.control_dt))
        self._sub.start()

    # ----- requests -----
    def _call(self, cmd: str, args: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
              ) -> tuple[dict[str, Any], list[bytes]]:
        """`_call_once`, and if control lapsed while this client was silent (its lease expired) and
        nobody else took it: hello again, say so in the log, and send the request once more (a refused
        request did nothing, so sending it again is safe)."""
        try:
            return self._call_once(cmd, args, timeout_s=timeout_s)
        except NotControllerError as e:
            if cmd == "hello" or self.role_wanted != "control" or not self._connected or "lease expired" not in str(e):
                raise
            with self._lock:
                info, _ = self._call_once("hello", {"role": "control", "takeover": False, "client": self.client_name})
                self.info.update(info)
                self.role = str(info.get("role"))
                if self.role != "control":
                    raise NotControllerError(Err.NOT_CONTROLLER, f"{self.url}: another client took control while this "
                                             "one was silent; connect with takeover=1 to take it back") from None
                self.reacquired += 1
                log.info("%s: control lapsed while this client was silent; took it back", self.url)
            return self._call_once(cmd, args, timeout_s=timeout_s)

    def _call_once(self, cmd: str, args: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
                   ) -> tuple[dict[str, Any], list[bytes]]:
        """One request/reply. Read-only requests are re-sent on a fresh socket with backoff
        (0.25 s, 0.5 s, 1 s, ...) within the timeout; motion commands are sent once."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            deadline = time.monotonic() + timeout
            slice_s = 0.25 if cmd in IDEMPOTENT else timeout
            while True:
                self._req += 1
                rid = self._req
                dealer = self._open_dealer()
                try:
                    dealer.send(P.request(rid, cmd, args), zmq.NOBLOCK)
                except zmq.Again:
                    pass  # not connected yet and the queue is full: wait for the deadline below
                attempt_end = min(deadline, time.monotonic() + slice_s)
                got = self._await_reply(dealer, rid, attempt_end)
                if got is not None:
                    self._last_reply = time.monotonic()
                    return self._check_reply(cmd, got)
                self._reset_dealer()
                if time.monotonic() >= deadline - 1e-3:
                    raise RobotError(self._no_reply_message(timeout))
                slice_s *= 2

    def _await_reply(self, dealer: zmq.Socket, rid: int, end: float) -> tuple[dict[str, Any], list[bytes]] | None:
        while True:
            left = end - time.monotonic()
            if left <= 0 or not dealer.poll(max(1, int(left * 1000))):
                return None
            frames = dealer.recv_multipart()
            if frames and frames[0] == b"":  # tolerate a REQ-style delimiter
                frames = frames[1:]
            try:
                header = P.unpack(frames[0], max_bytes=REPLY_MAX_BYTES)
            except Exception:
                continue  # garbage: ignore it, keep waiting for ours
            if not isinstance(header, dict) or header.get("id") != rid:
                continue  # a late reply to an earlier request that timed out
            return header, frames[1:]

    def _check_reply(self, cmd: str, got: tuple[dict[str, Any], list[bytes]]) -> tuple[dict[str, Any], list[bytes]]:
        header, frames = got
        if header.get("ok") is True:
            res = header.get("result")
            return (res if isinstance(res, dict) else {"value": res}), frames
        err = header.get("error")
        if not isinstance(err, dict):
            err = {}
        code, msg = str(err.get("code", Err.INTERNAL)), str(err.get("message", "unknown error"))
        if code == Err.UNSUPPORTED_VERSION:
            raise ServerError(code, f"{self.url}: protocol version mismatch: {msg} (this client speaks "
                                    f"{P.PROTOCOL_VERSION}; upgrade the older side)")
        if code == Err.NOT_CONTROLLER:
            raise NotControllerError(code, f"{self.url}: not the controller: {msg}")
        if code == Err.UNAUTHORIZED:
            raise ServerError(code, f"{self.url}: not authorised: {msg}")
        if code == Err.BAD_REQUEST and cmd == "send_action":
            raise ActionError(f"{self.url} rejected the action: {msg}")
        raise ServerError(code, f"{self.url}: {cmd} failed ({code}): {msg}")

    def _no_reply_message(self, timeout: float) -> str:
        base = f"no reply from {self.url} within {timeout:.1f} s"
        if self._connected:  # it answered before: the link went, not the configuration
            return f"{base}: lost the link to the server (it holds the arm when commands stop)"
        if self._curve is not None:
            return (f"{base}: not authorised or server unreachable (is `corrigo serve` running, and is this "
                    "client's public key in its --allow list?)")
        return f"{base} (is `corrigo serve` running? if it uses --curve-keys, pass server_key and client_key)"

    def _require(self) -> None:
        if not self._connected:
            raise NotConnectedError(f"{self.url} is not connected; call connect() first")

    # ----- the contract -----
    def ping(self) -> dict[str, Any]:
        return self._call("ping")[0]

    def get_observation(self) -> dict[str, Any]:
        self._require()
        with self._lock:
            msg = self._fresh_state()
            if msg is None:
                res, frames = self._call("get_observation")
                msg = (res, frames)
                self._remember(msg)
            header, frames = msg
            try:
                return P.decode_observation(header.get("obs"), frames)
            except (ValueError, TypeError) as e:
                raise RobotError(f"{self.url}: malformed observation ({e})") from None

    def _fresh_state(self) -> tuple[dict[str, Any], list[bytes]] | None:
        """The newest published state, if it is at least as new as our last command's tick.

        A tick's state is published before that tick's replies, but on another
        connection: wait a little for it, then fall back to a request.
        """
        if self._sub is None:
            return None
        msg = self._sub.wait_for(self._min_tick, min(0.02, self.control_dt / 2))
        if msg is not None:
            self._remember(msg)
        return msg

    def _remember(self, msg: tuple[dict[str, Any], list[bytes]]) -> None:
        if self._latest is None or int(msg[0].get("tick", -1)) >= int(self._latest[0].get("tick", -1)):
            self._latest = msg

    @property
    def state(self) -> dict[str, Any]:
        """Header of the newest state (tick, t, watchdog, hold_reason, action, ...), without images."""
        with self._lock:
            if self._sub is not None and self._fresh_state() is None and self._sub.latest is not None:
                self._remember(self._sub.latest)
            return {k: v for k, v in (self._latest[0] if self._latest else {}).items() if k != "obs"}

    @property
    def time_s(self) -> float:
        """The served body's clock at the newest state seen (simulated time for simulators)."""
        latest = self._sub.latest if self._sub is not None and self._sub.latest is not None else self._latest
        return float(latest[0].get("t", 0.0)) if latest else 0.0

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        self._require()
        try:
            wire = P.encode_action(action)
        except (TypeError, ValueError):
            raise ActionError("action values must be numbers or arrays of numbers") from None
        res, _ = self._call("send_action", {"action": wire})
        return self._applied(res)

    def hold(self) -> dict[str, Any]:
        self._require()
        res, _ = self._call("hold")
        return self._applied(res)

    def _applied(self, res: dict[str, Any]) -> dict[str, Any]:
        self.last_reply = res
        if res.get("applied"):
            self._min_tick = int(res.get("tick", 0))
        act = res.get("action")
        if not isinstance(act, dict):
            raise RobotError(f"{self.url}: malformed reply (no action)")
        return P.decode_action(act)

    def release(self) -> None:
        self._call("release")
        self.role = "observe"

    def stop_server(self) -> dict[str, Any]:
        """Hold the arm and stop the server (needs control)."""
        return self._call("stop")[0]

    # ----- optional capabilities of the served body -----
    def scene_objects(self) -> list[SceneObject]:
        self._require()
        if "scene" not in self.capabilities:
            raise RobotError(f"{self.url} serves {self.info.get('body', 'a body')} which cannot list scene objects")
        res, _ = self._call("scene")
        try:
            return [SceneObject.from_dict(d) for d in res["objects"]]
        except (KeyError, TypeError, ValueError) as e:
            raise RobotError(f"{self.url}: malformed scene reply ({e})") from None

    def reset(self, seed: int | None = None) -> None:
        self._require()
        if "reset" not in self.capabilities:
            raise RobotError(f"{self.url} serves {self.info.get('body', 'a body')} which cannot reset")
        self._call("reset", {"seed": int(seed or 0)}, timeout_s=max(self.timeout_s, 30.0))
        self._min_tick = 0
        self._latest = None


class _StateReader(threading.Thread):
    """Drains the SUB socket continuously and keeps only the newest state.

    A reader is needed because HWM-limited queues drop *new* messages when full: a
    subscriber that reads only now and then would see stale states. Only headers
    are decoded here; image frames are decoded when an observation is asked for.

    The server publishes every tick, so silence for `stale_s` means the connection is
    stuck (a link that blackholed, or a corrupted length prefix that has libzmq waiting
    for a frame that never comes): the reader then reconnects, as the request path
    does after a timeout. Until then `get_observation` falls back to requests.
    """

    def __init__(self, sock: zmq.Socket, endpoint: str = "", stale_s: float = 1.0) -> None:
        super().__init__(name="corrigo-zmq-state", daemon=True)
        self._sock = sock
        self._endpoint, self._stale_s = endpoint, stale_s
        self.reconnects = 0
        self._cond = threading.Condition()
        self._stop_flag = False
        self.latest: tuple[dict[str, Any], list[bytes]] | None = None
        self.received = 0

    def run(self) -> None:
        last = time.monotonic()
        try:
            while not self._stop_flag:
                if not self._sock.poll(50):
                    if self._endpoint and time.monotonic() - last > self._stale_s:
                        self._sock.disconnect(self._endpoint)  # drops the stuck TCP connection
                        self._sock.connect(self._endpoint)
                        self.reconnects += 1
                        last = time.monotonic()
                    continue
                last = time.monotonic()
                newest = None
                while True:
                    try:
                        newest = self._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.received += 1
                if newest is None or len(newest) < 2:
                    continue
                try:
                    header = P.unpack(newest[1], max_bytes=REPLY_MAX_BYTES)
                except Exception:
                    continue  # a malformed state is skipped, never fatal
                if isinstance(header, dict) and header.get("v") == P.PROTOCOL_VERSION:
                    with self._cond:
                        self.latest = (header, newest[2:])
                        self._cond.notify_all()
        finally:
            self._sock.close(0)

    def wait_for(self, min_tick: int, timeout_s: float) -> tuple[dict[str, Any], list[bytes]] | None:
        def fresh() -> bool:
            return self.latest is not None and int(self.latest[0].get("tick", -1)) >= min_tick

        with self._cond:
            if self._cond.wait_for(fresh, timeout_s):
                return self.latest
            return None

    def close(self) -> None:
        self._stop_flag = True
        self.join(1.0)


def _curve_keys(server_key: str | bytes | None, client_keys: Any) -> tuple[bytes, bytes, bytes] | None:
    """(server public, client public, client secret) as z85 bytes, from key files or raw z85."""
    if server_key is None and client_keys is None:
        return None
    if server_key is None or client_keys is None:
        raise RobotError("zmq: CURVE needs both the server's public key and this client's keypair")
    from zmq.auth import load_certificate

    def public_of(k: str | bytes) -> bytes:
        if isinstance(k, bytes) and len(k) == 40:
            return k
        if isinstance(k, str) and len(k) == 40 and not Path(k).exists():
            return k.encode()
        try:
            return load_certificate(str(k))[0]
        except (OSError, ValueError) as e:
            raise RobotError(f"zmq: cannot read server public key {k!r}: {e}") from None

    server_pub = public_of(server_key)
    if isinstance(client_keys, (tuple, list)) and len(client_keys) == 2:
        pub, sec = (k.encode() if isinstance(k, str) else k for k in client_keys)
    else:
        try:
            pub, sec = load_certificate(str(client_keys))
        except (OSError, ValueError) as e:
            raise RobotError(f"zmq: cannot read client keypair {client_keys}: {e}") from None
        if sec is None:
            raise RobotError(f"zmq: {client_keys} has no secret key; pass the .key_secret file")
    return server_pub, pub, sec


def parse_spec(spec: str) -> tuple[str, int, dict[str, Any]]:
    """`zmq://HOST[:PORT][?server_key=F&client_key=F&role=observe&takeover=1&timeout=2]`."""
    parts = urlsplit(spec)
    if parts.scheme != "zmq" or not parts.hostname:
        raise RobotError(f"bad robot address {spec!r}; expected zmq://HOST:PORT")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise RobotError(f"bad port in {spec!r}") from None
    kw = spec_options(spec, parts.query, {"server_key": ("curve_server_key", str), "client_key": ("curve_client_keys", str),
                                          "role": ("role", str), "takeover": ("takeover", truthy),
                                          "timeout": ("timeout_s", float)})
    return parts.hostname, port, kw


def make_zmq_robot(spec: str, **kwargs: Any) -> ZmqRobot:
    host, port, kw = parse_spec(spec)
    kw.update(kwargs)
    return ZmqRobot(host, port, **kw)
