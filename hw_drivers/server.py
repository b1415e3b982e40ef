"""Robot server: any `Robot` behind the corrigo ZMQ protocol (docs/protocol.md).

Two threads, each owning its sockets (ZMQ sockets are not thread-safe):

- the I/O thread owns the ROUTER (commands) and an inproc PULL; it validates every
  request, answers what needs no robot at once, and hands the rest over;
- the control thread owns the body and the PUB socket. It alone calls the robot
  (MuJoCo GL contexts and vendor SDKs are thread-bound), ticks at
  `robot.control_dt` in wall time, applies the latest command (or holds, on the
  watchdog), publishes state, and sends deferred replies over the inproc PUSH.

In lockstep mode a `send_action` reply leaves only after the tick that applied it,
so a client is paced at the body's rate exactly as a local simulator paces it.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq

import hw_drivers.protocol as P
from hw_drivers.protocol import Err, ProtocolError
from robot.errors import CorrigoError
from robot.robot import Robot, SceneProvider
from robot.safety import SafetyLimits, clip_action
from robot.types import ARM_ACTION_FEATURES

log = logging.getLogger("corrigo.server")
TRANSPORT_MAX_BYTES = 16 << 20  # beyond this libzmq drops the peer; between 1 MB and this we reply BAD_REQUEST
MODES = ("lockstep", "stream")
MAX_QUEUED_JOBS = 16  # scene/reset requests waiting for the control thread


@dataclass
class ServerConfig:
    bind: str = "tcp://127.0.0.1:5555"
    pub_bind: str | None = None  # default: the command port + 1
    watchdog_s: float = 0.25  # hold when no motion command came for this long
    lease_s: float = 2.0  # the controller loses control after this much silence
    mode: str = "lockstep"  # "stream": reply to send_action at once (before the tick applies it)
    image_encoding: str = "raw"  # or "jpeg" for HxWx3 uint8 images
    jpeg_quality: int = 90
    safety: SafetyLimits = field(default_factory=SafetyLimits)
    curve_keys: str | None = None  # a directory with server.key_secret, or a .key_secret file
    allow: tuple[str, ...] = ()  # client public key files (or directories of *.key) that may control
    allow_observe: tuple[str, ...] = ()  # client public keys that may connect but only observe
    max_clients: int = 64

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CorrigoError(f"serve: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.image_encoding not in ("raw", "jpeg"):
            raise CorrigoError(f"serve: image encoding must be raw or jpeg, got {self.image_encoding!r}")
        for endpoint in (self.bind, self.pub_bind):
            _check_endpoint(endpoint)
        if not 0.01 <= self.watchdog_s <= 10.0:
            raise CorrigoError("serve: the watchdog must be between 10 ms and 10 s")
        if not 0 < self.lease_s <= 3600:
            raise CorrigoError("serve: the control lease must be in (0, 3600] s")
        if not 1 <= self.jpeg_quality <= 100:
            raise CorrigoError("serve: JPEG quality must be in [1, 100]")
        if self.curve_keys and not (self.allow or self.allow_observe):
            raise CorrigoError("serve: --curve-keys needs at least one --allow CLIENT_PUBKEY_FILE")
        if (self.allow or self.allow_observe) and not self.curve_keys:
            raise CorrigoError("serve: --allow needs --curve-keys DIR (the server's own keypair)")


@dataclass
class _Client:
    ident: bytes
    last_seen: float
    role: str = "observe"
    name: str = ""
    key: str | None = None  # CURVE public key (z85) when authenticated
    lost: str = ""  # why this client lost control, if it did


@dataclass
class _Command:
    kind: str  # "action" or "hold"
    action: dict[str, Any] | None
    seq: int


Envelope = list[bytes]


class RobotServer:
    """Serve `robot` (not yet connected; the server connects and disconnects it)."""

    def __init__(self, robot: Robot, config: ServerConfig | None = None) -> None:
        self.robot = robot
        self.config = config or ServerConfig()
        self.endpoint = ""
        self.pub_endpoint = ""
        self._ctx: zmq.Context | None = None
        self._auth: Any = None
        self._allowed_dir: str | None = None
        self._observe_keys: set[str] = set()
        self._lock = threading.Lock()
        self._jobs: "queue.Queue[Callable[[], None]]" = queue.Queue()
        self._stop = threading.Event()  # stop requested
        self._control_done = threading.Event()
        self._io_done = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._stop_reply: tuple[Envelope, Any] | None = None
        self._inproc = f"inproc://corrigo-replies-{uuid.uuid4().hex}"
        # shared state (under _lock)
        self._clients: dict[bytes, _Client] = {}
        self._controller: bytes | None = None
        self._cmd: _Command | None = None
        self._seq = 0
        self._last_motion = 0.0
        self._waiting: list[tuple[Envelope, Any, int]] = []
        self._latest: tuple[dict[str, Any], list[bytes]] | None = None
        self._pose: tuple[np.ndarray, np.ndarray, float] | None = None
        self._tick = 0
        self.stats = {"requests": 0, "errors": 0, "commands": 0, "ticks": 0, "auto_holds": 0, "overruns": 0}
        # set in the control thread once connected
        self.control_dt = float(getattr(robot, "control_dt", 0.05))
        self._features: dict[str, Any] = {}
        self._arm_layout = False
        self._can_scene = False
        self._can_reset = False

    # ----- lifecycle -----
    def start(self, timeout_s: float = 60.0) -> None:
        """Bind sockets, connect the body (in the control thread), start serving."""
        cfg = self.config
        # The I/O and control threads share the GIL; with Python's default 5 ms switch
        # interval one can wait that long for the other (seen as a 3 ms p99 round trip).
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        ctx = self._ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        pub = ctx.socket(zmq.PUB)
        inbox = ctx.socket(zmq.PULL)
        push = ctx.socket(zmq.PUSH)
        try:
            for s in (router, pub):
                s.setsockopt(zmq.LINGER, 500)
            router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client keeps its identity (and control)
            router.setsockopt(zmq.MAXMSGSIZE, TRANSPORT_MAX_BYTES)
            pub.setsockopt(zmq.SNDHWM, 4)  # latest-only: a slow subscriber drops old states, never lags
            if cfg.curve_keys:
                self._setup_curve(ctx, [router, pub])
            router.bind(cfg.bind)
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            pub.bind(cfg.pub_bind or default_pub_bind(cfg.bind))
            self.pub_endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
            inbox.bind(self._inproc)
            push.connect(self._inproc)
        except (zmq.ZMQError, CorrigoError) as e:
            for sock in (router, pub, inbox, push):
                sock.close(0)
            self._teardown_ctx()
            if isinstance(e, CorrigoError):
                raise
            raise CorrigoError(f"serve: cannot bind {cfg.bind}: {e}") from None
        ctrl = threading.Thread(target=self._control_main, args=(pub, push), name="corrigo-control", daemon=True)
        ctrl.start()
        if not self._ready.wait(timeout_s) or self._start_error is not None:
            self._stop.set()
            ctrl.join(5)
            for s in (router, inbox):
                s.close(0)
            self._teardown_ctx()
            err = self._start_error
            raise CorrigoError(f"serve: the body {self.robot.name} failed to start: {err or 'timed out'}") from None
        io = threading.Thread(target=self._io_main, args=(router, inbox), name="corrigo-io", daemon=True)
        io.start()
        self._threads = [ctrl, io]

    def request_stop(self) -> None:
        """Hold the arm, stop serving, disconnect the body (asynchronous; see `wait`)."""
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server has stopped; True if it has."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._io_done.is_set():
            left = 0.2 if end is None else min(0.2, end - time.monotonic())
            if left <= 0:
                return False
            self._io_done.wait(left)  # short waits so signal handlers run in the main thread
        for t in self._threads:
            t.join(5)
        self._teardown_ctx()
        return True

    def close(self) -> None:
        self.request_stop()
        if self._threads:
            self.wait(10)

    def __enter__(self) -> "RobotServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stopped(self) -> bool:
        return self._io_done.is_set()

    def _teardown_ctx(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        if self._allowed_dir:
            shutil.rmtree(self._allowed_dir, ignore_errors=True)
            self._allowed_dir = None

    def _setup_curve(self, ctx: zmq.Context, sockets: list[zmq.Socket]) -> None:
        from zmq.auth import load_certificate
        from zmq.auth.thread import ThreadAuthenticator

        cfg = self.config
        assert cfg.curve_keys
        secret_file = Path(cfg.curve_keys)
        if secret_file.is_dir():
            found = sorted(secret_file.glob("*.key_secret"))
            named = secret_file / "server.key_secret"
            secret_file = named if named.is_file() else (found[0] if len(found) == 1 else named)
        try:
            public, secret = load_certificate(str(secret_file))
        except (OSError, ValueError) as e:
            raise CorrigoError(f"serve: cannot read the server keypair {secret_file}: {e}") from None
        if not secret:
            raise CorrigoError(f"serve: {secret_file} holds no secret key (use the .key_secret file)")
        # configure_curve takes a directory of allowed public keys: gather them in one
        self._allowed_dir = tempfile.mkdtemp(prefix="corrigo-allow-")
        n = 0
        for group, observe in ((cfg.allow, False), (cfg.allow_observe, True)):
            for f in _key_files(group):
                try:
                    pub_key, _ = load_certificate(str(f))
                except (OSError, ValueError) as e:
                    raise CorrigoError(f"serve: cannot read client key {f}: {e}") from None
                shutil.copy(f, os.path.join(self._allowed_dir, f"client{n}.key"))
                n += 1
                if observe:
                    self._observe_keys.add(pub_key.decode())
        if n == 0:
            raise CorrigoError("serve: no client public keys found in --allow")
        self._auth = ThreadAuthenticator(ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=self._allowed_dir)
        for s in sockets:
            s.curve_secretkey = secret
            s.curve_publickey = public
            s.curve_server = True

    # ----- control thread: the only code that touches the robot -----
    def _control_main(self, pub: zmq.Socket, push: zmq.Socket) -> None:
        self._pub, self._push = pub, push
        robot = self.robot
        try:
            if not robot.is_connected:
                robot.connect()
            self.control_dt = float(robot.control_dt)
            self._features = {
                "observation_features": P.features_to_wire(robot.observation_features),
                "action_features": P.features_to_wire(robot.action_features),
            }
            self._action_features = dict(robot.action_features)
            self._arm_layout = set(self._action_features) == set(ARM_ACTION_FEATURES)
            self._can_scene = isinstance(robot, SceneProvider)
            self._can_reset = callable(getattr(robot, "reset", None))
            self._publish(robot.get_observation(), None, "no controller", "hold")
        except BaseException as e:  # reported by start()
            self._start_error = e
            self._ready.set()
            pub.close(0)
            push.close(0)
            self._control_done.set()
            return
        self._ready.set()
        dt = self.control_dt
        next_t = time.perf_counter() + dt
        try:
            while not self._stop.is_set():
                self._run_jobs_until(next_t)
                if self._stop.is_set():
                    break
                self._do_tick()
                next_t += dt
                now = time.perf_counter()
                if now > next_t + dt:  # fell behind (slow body, busy CPU): skip, never burst to catch up
                    self.stats["overruns"] += 1
                    next_t = now + dt
        finally:
            self._shutdown_body()
            pub.close()
            push.close()
            self._control_done.set()

    def _run_jobs_until(self, deadline: float) -> None:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            try:
                job = self._jobs.get(timeout=left)
            except queue.Empty:
                return
            job()
            if self._stop.is_set():
                return

    def _do_tick(self) -> None:
        now = time.perf_counter()
        with self._lock:
            cmd, waiting, self._waiting = self._cmd, self._waiting, []
            pose = self._pose
            reason = None
            if self._controller is None:
                reason = "no controller"
            elif cmd is None:
                reason = "no command yet"
            elif now - self._last_motion > self.config.watchdog_s:
                reason = "watchdog: no command for more than %d ms" % round(self.config.watchdog_s * 1000)
        clipped: list[str] = []
        try:
            if reason is None and cmd is not None and cmd.kind == "action" and cmd.action is not None:
                safe = cmd.action
                if self._arm_layout:
                    if pose is None:
                        raise CorrigoError("no end-effector pose to check the action against")
                    safe, clipped = self._clip(cmd.action, pose)
                sent, kind = self.robot.send_action(safe), "action"
            else:
                sent, kind = self.robot.hold(), "hold"
                if reason is not None:
                    self.stats["auto_holds"] += 1
            obs = self.robot.get_observation()
        except Exception as e:
            log.error("control tick failed: %s", e)
            for env, rid, _ in waiting:
                self._push.send_multipart([*env, P.reply_error(rid, Err.INTERNAL, f"the body failed: {e}")])
            self._try_hold()
            return
        self._tick += 1
        self.stats["ticks"] = self._tick
        self._publish(obs, sent, reason, kind)
        wire = P.encode_action(sent)
        for env, rid, seq in waiting:
            result = {"action": wire, "tick": self._tick, "clipped": clipped, "applied": True,
                      "superseded": cmd is not None and seq != cmd.seq}
            self._push.send_multipart([*env, P.reply_ok(rid, result)])

    def _clip(self, action: dict[str, Any], pose: tuple[np.ndarray, np.ndarray, float]) -> tuple[dict[str, Any], list[str]]:
        return clip_action(action, pose[0], pose[1], pose[2], self.config.safety)

    def _publish(self, obs: dict[str, Any], sent: dict[str, Any] | None, reason: str | None, kind: str) -> None:
        specs, frames = P.encode_observation(obs, image_encoding=self.config.image_encoding,
                                             jpeg_quality=self.config.jpeg_quality)
        header = {
            "v": P.PROTOCOL_VERSION, "tick": self._tick, "t": float(self.robot.time_s), "wall": time.time(),
            "watchdog": "holding" if reason else "ok", "hold_reason": reason, "command": kind,
            "controlled": self._controller is not None,
            "action": P.encode_action(sent) if sent is not None else None, "obs": specs,
        }
        pose = None
        state = obs.get("observation.state")
        if self._arm_layout and state is not None and np.size(state) >= 8:
            s = np.asarray(state, dtype=float).reshape(-1)
            pose = (s[0:3].copy(), s[3:7].copy(), float(s[7]))
        with self._lock:
            self._latest = (header, frames)
            self._pose = pose
        try:
            self._pub.send_multipart([P.STATE_TOPIC, P.pack(header), *frames], copy=False)
        except zmq.ZMQError as e:
            log.warning("publish failed: %s", e)

    def _try_hold(self) -> dict[str, Any] | None:
        try:
            return self.robot.hold()
        except Exception as e:
            log.error("hold failed: %s", e)
            return None

    def _shutdown_body(self) -> None:
        """Explicit termination: hold, publish one last state, answer `stop`, disconnect."""
        sent = self._try_hold()
        try:
            self._publish(self.robot.get_observation(), sent, "server stopping", "hold")
        except Exception as e:
            log.warning("final state not published: %s", e)
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for env, rid, _ in waiting:
            self._push.send_multipart([*env, P.reply_error(rid, Err.STOPPING, "the server is stopping")])
        if self._stop_reply is not None:
            env, rid = self._stop_reply
            final = {"stopped": True, "action": P.encode_action(sent) if sent else None}
            self._push.send_multipart([*env, P.reply_ok(rid, final)])
        try:
            self.robot.disconnect()
        except Exception as e:
            log.error("disconnect failed: %s", e)

    # ----- I/O thread -----
    def _io_main(self, router: zmq.Socket, inbox: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(inbox, zmq.POLLIN)
        try:
            while True:
                events = dict(poller.poll(20))
                if inbox in events:
                    self._forward(inbox, router)
                if router in events:
                    for _ in range(256):  # bounded, so deferred replies are not starved
                        try:
                            # Frame objects (copy=False) carry the CURVE User-Id but cost more
                            # than bytes for small messages: only ask for them when needed
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=not self.config.curve_keys)
                        except zmq.Again:
                            break
                        self._on_message(router, frames)
                self._expire_lease()
                if self._control_done.is_set():
                    self._forward(inbox, router)
                    break
        except Exception as e:  # never expected; keep the arm safe
            log.exception("I/O thread failed: %s", e)
            self._stop.set()
            self._control_done.wait(5)
        finally:
            router.close()
            inbox.close(0)
            self._io_done.set()

    @staticmethod
    def _forward(inbox: zmq.Socket, router: zmq.Socket) -> None:
        while True:
            try:
                router.send_multipart(inbox.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return

    def _on_message(self, router: zmq.Socket, frames: list[Any]) -> None:
        ident = _bytes(frames[0])
        rest = frames[1:]
        env: Envelope = [ident]
        if rest and len(rest[0]) == 0:  # REQ clients put an empty delimiter first
            env.append(b"")
            rest = rest[1:]
        self.stats["requests"] += 1
        req_id: Any = None
        try:
            size = sum(len(f) for f in rest)
            if size > P.MAX_MESSAGE_BYTES:
                raise ProtocolError(Err.BAD_REQUEST, f"request of {size} bytes exceeds {P.MAX_MESSAGE_BYTES}")
            if len(rest) != 1:
                raise ProtocolError(Err.BAD_REQUEST, f"a request is exactly one msgpack frame, got {len(rest)}")
            key = _user_id(rest[0]) if self.config.curve_keys else None
            req = P.parse_request(_bytes(rest[0]))
            req_id = req.id
            if self._stop.is_set():
                raise ProtocolError(Err.STOPPING, "the server is stopping")
            client = self._touch(ident, key)
            reply = self._handle(req, client, env)
        except ProtocolError as e:
            self.stats["errors"] += 1
            reply = P.reply_error(e.req_id if e.req_id is not None else req_id, e.code, e.message)
        except Exception as e:  # a bug or a body error: report, keep serving
            log.exception("request failed")
            self.stats["errors"] += 1
            reply = P.reply_error(req_id, Err.INTERNAL, f"{type(e).__name__}: {e}")
        if reply is None:  # deferred: the control thread answers
            return
        if isinstance(reply, bytes):
            router.send_multipart([*env, reply])
        else:  # a header and image frames: no copies of the large frames
            router.send_multipart([*env, *reply], copy=False)

    def _touch(self, ident: bytes, key: str | None) -> _Client:
        now = time.monotonic()
        with self._lock:
            c = self._clients.get(ident)
            if c is None:
                if len(self._clients) >= self.config.max_clients:
                    idle = [x for x in self._clients.values() if x.ident != self._controller]
                    if idle:
                        del self._clients[min(idle, key=lambda x: x.last_seen).ident]
                c = self._clients[ident] = _Client(ident, now, key=key)
            c.last_seen = now
            return c

    def _expire_lease(self) -> None:
        with self._lock:
            c = self._clients.get(self._controller) if self._controller is not None else None
            if self._controller is not None and (c is None or time.monotonic() - c.last_seen > self.config.lease_s):
                log.info("controller %s silent for more than %.1f s: control released", c.name if c else "?", self.config.lease_s)
                self._drop_control_locked("control lease expired")

    def _drop_control_locked(self, why: str) -> None:
        old = self._controller
        if old is not None and old in self._clients:
            self._clients[old].role, self._clients[old].lost = "observe", why
        self._controller, self._cmd = None, None
        waiting, self._waiting = self._waiting, []
        for env, rid, _ in waiting:  # the control thread never sees these now
            self._push_from_io(env, P.reply_error(rid, Err.NOT_CONTROLLER, why))

    def _push_from_io(self, env: Envelope, reply: bytes) -> None:
        # Replies from the I/O thread outside _on_message go through the job queue so the
        # control thread's PUSH socket stays single-threaded.
        def job() -> None:
            self._push.send_multipart([*env, reply])

        self._jobs.put(job)

    def _handle(self, req: P.Request, client: _Client, env: Envelope) -> bytes | list[bytes] | None:
        cmd, a, rid = req.cmd, req.args, req.id
        if cmd == "hello":
            return P.reply_ok(rid, self._hello(client, a))
        if cmd == "ping":
            return P.reply_ok(rid, {"t": time.time(), "tick": self._tick, "stats": dict(self.stats)})
        if cmd == "features":
            return P.reply_ok(rid, {**self._features, "control_dt": self.control_dt, "body": self.robot.name,
                                    "capabilities": self._capabilities()})
        if cmd == "get_observation":
            with self._lock:
                latest = self._latest
            assert latest is not None
            header, frames = latest
            return [P.reply_ok(rid, header), *frames]
        if cmd == "scene":
            if not self._can_scene:
                raise ProtocolError(Err.NOT_SUPPORTED, f"{self.robot.name} cannot list scene objects")
            self._queue_job(lambda: self._scene_job(env, rid))
            return None
        is_controller = self._controller == client.ident
        if cmd == "release":
            if is_controller:
                with self._lock:
                    self._drop_control_locked("control released")
            client.role, client.lost = "observe", ""
            return P.reply_ok(rid, {"role": "observe"})
        if not is_controller:
            why = f" (this client no longer holds control: {client.lost})" if client.lost else ""
            raise ProtocolError(Err.NOT_CONTROLLER, f"{cmd} needs control; send hello with role 'control' first{why}")
        if cmd == "send_action":
            action = P.validate_action(a["action"], self._action_features)
            return self._command(_Command("action", action, 0), env, rid)
        if cmd == "hold":
            return self._command(_Command("hold", None, 0), env, rid)
        if cmd == "stop":
            self._stop_reply = (env, rid)
            self._stop.set()
            return None
        if cmd == "reset":
            if not self._can_reset:
                raise ProtocolError(Err.NOT_SUPPORTED, f"{self.robot.name} cannot reset")
            self._queue_job(lambda: self._reset_job(env, rid, int(a["seed"])))
            return None
        raise ProtocolError(Err.UNKNOWN_COMMAND, f"unknown command {cmd!r}")

    def _queue_job(self, job: Callable[[], None]) -> None:
        # a flood of requests that need the body must not starve the control loop
        if self._jobs.qsize() >= MAX_QUEUED_JOBS:
            raise ProtocolError(Err.BUSY, "too many requests queued for the body; retry later")
        self._jobs.put(job)

    def _hello(self, client: _Client, a: dict[str, Any]) -> dict[str, Any]:
        if isinstance(a.get("client"), str):
            client.name = a["client"][:64]
        want = a.get("role", "observe")
        busy = False
        with self._lock:
            if want == "control":
                if client.key is not None and client.key in self._observe_keys:
                    raise ProtocolError(Err.UNAUTHORIZED, "this client's key may observe but not control")
                if self._controller in (None, client.ident) or a.get("takeover", False):
                    if self._controller not in (None, client.ident):
                        log.info("control taken over by %s", client.name or "a client")
                        self._drop_control_locked("control was taken over by another client")
                    if self._controller != client.ident:
                        self._controller, self._cmd = client.ident, None
                    client.role, client.lost = "control", ""
                else:
                    busy, client.role = True, "observe"
            else:
                if self._controller == client.ident:
                    self._drop_control_locked("control released")
                client.role = "observe"
        port = self.pub_endpoint.rsplit(":", 1)[-1]
        return {
            "role": client.role, "protocol": P.PROTOCOL_VERSION, "server": "corrigo", "body": self.robot.name,
            "control_dt": self.control_dt, "pub_endpoint": self.pub_endpoint,
            "pub_port": int(port) if port.isdigit() else None, "capabilities": self._capabilities(),
            "watchdog_ms": round(self.config.watchdog_s * 1000), "lease_s": self.config.lease_s,
            "mode": self.config.mode, "controller_busy": busy,
        }

    def _capabilities(self) -> list[str]:
        return [c for c, ok in (("scene", self._can_scene), ("reset", self._can_reset)) if ok]

    def _command(self, c: _Command, env: Envelope, rid: Any) -> bytes | None:
        with self._lock:
            self._seq += 1
            c.seq = self._seq
            self._cmd = c
            self._last_motion = time.perf_counter()
            self.stats["commands"] += 1
            if self.config.mode == "lockstep":
                self._waiting.append((env, rid, c.seq))
                return None
            pose, tick = self._pose, self._tick
        # stream mode: answer now with the action as the server will clip it against the latest pose
        action, clipped = c.action, list[str]()
        if c.kind == "action" and action is not None and self._arm_layout and pose is not None:
            action, clipped = self._clip(action, pose)
        return P.reply_ok(rid, {"action": P.encode_action(action) if action is not None else None, "tick": tick,
                                "clipped": clipped, "applied": False, "superseded": False})

    def _scene_job(self, env: Envelope, rid: Any) -> None:
        try:
            objs = [o.to_dict() for o in self.robot.scene_objects()]  # type: ignore[attr-defined]
            reply = P.reply_ok(rid, {"objects": objs})
        except Exception as e:
            reply = P.reply_error(rid, Err.INTERNAL, f"scene failed: {e}")
        self._push.send_multipart([*env, reply])

    def _reset_job(self, env: Envelope, rid: Any, seed: int) -> None:
        try:
            self.robot.reset(seed)  # type: ignore[attr-defined]
            with self._lock:
                self._cmd = None  # an old target means nothing in the new world: hold until commanded
            self._publish(self.robot.get_observation(), None, "reset", "hold")
            reply = P.reply_ok(rid, {"seed": seed, "t": float(self.robot.time_s)})
        except Exception as e:
            reply = P.reply_error(rid, Err.INTERNAL, f"reset failed: {e}")
        self._push.send_multipart([*env, reply])


def _bytes(frame: bytes | zmq.Frame) -> bytes:
    return frame if isinstance(frame, bytes) else frame.bytes


def _user_id(frame: bytes | zmq.Frame) -> str | None:
    if isinstance(frame, bytes):
        return None
    try:
        return str(frame.get("User-Id"))
    except (zmq.ZMQError, AttributeError):
        return None


def _key_files(paths: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.key")))
        elif p.is_file():
            out.append(p)
        else:
            raise CorrigoError(f"serve: no such key file or directory: {p}")
    return out


def _check_endpoint(endpoint: str | None) -> None:
    """A tcp port beyond 65535 would be taken modulo 65536 by the socket layer: refuse it."""
    if endpoint is None or not endpoint.startswith("tcp://"):
        return
    port = endpoint.rpartition(":")[2]
    if port != "*" and not (port.isdigit() and int(port) <= 65535):
        raise CorrigoError(f"serve: bad port in {endpoint!r} (0..65535, or * for any free port)")


def default_pub_bind(endpoint: str) -> str:
    """The state channel's endpoint: command port + 1 for tcp, `<path>.state` for ipc."""
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[6:].rpartition(":")
        return f"tcp://{host}:{int(port) + 1}" if port.isdigit() else f"tcp://{host}:*"
    return endpoint + ".state"
