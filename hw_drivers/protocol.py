"""corrigo robot wire protocol, version 1 (specified in docs/protocol.md).

Transport: ZeroMQ. Commands go over a ROUTER socket (clients use DEALER, or REQ);
state and camera frames are published on a PUB socket. Every message is msgpack
(no pickle anywhere); large arrays travel as extra binary frames of a multipart
message, described by the msgpack header in frame 0, never inflated into msgpack.

This module is pure encoding and validation: no sockets, no threads.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, TypeGuard

import msgpack
import numpy as np

from robot.errors import CorrigoError
from robot.types import Feature

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20  # a request larger than this is answered with BAD_REQUEST
MAX_STRING_BYTES = 1024
MAX_ID_CHARS = 64
INLINE_MAX_ELEMENTS = 1024  # 0-d/1-d numeric arrays up to this size travel as msgpack lists
STATE_TOPIC = b"state"

COMMANDS: tuple[str, ...] = (
    "hello", "features", "ping", "get_observation", "send_action", "hold", "release", "stop", "scene", "reset",
)
MOTION_COMMANDS = frozenset({"send_action", "hold"})  # need control; renew the watchdog
ARGS: dict[str, frozenset[str]] = {  # allowed argument names per command
    "hello": frozenset({"role", "takeover", "client"}),
    "send_action": frozenset({"action"}),
    "reset": frozenset({"seed"}),
}
ROLES = ("control", "observe")
# dtypes allowed on the wire (always little-endian); names are numpy's
DTYPES = frozenset({"bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float32", "float64"})


class Err:
    """Error codes of `{"ok": false, "error": {"code": ..., "message": ...}}` replies."""

    BAD_REQUEST = "BAD_REQUEST"  # malformed msgpack, wrong types/shapes, NaN/inf, too large, unknown field
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"  # "v" is not PROTOCOL_VERSION
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    NOT_CONTROLLER = "NOT_CONTROLLER"  # a motion command from a client that does not hold control
    UNAUTHORIZED = "UNAUTHORIZED"  # the client's CURVE key may observe but not control
    NOT_SUPPORTED = "NOT_SUPPORTED"  # the served body lacks the capability (scene, reset)
    INTERNAL = "INTERNAL"  # the body raised; the server keeps serving
    STOPPING = "STOPPING"  # the server is shutting down
    BUSY = "BUSY"  # too many scene/reset requests queued for the control thread; retry later

    ALL = ("BAD_REQUEST", "UNSUPPORTED_VERSION", "UNKNOWN_COMMAND", "NOT_CONTROLLER", "UNAUTHORIZED",
           "NOT_SUPPORTED", "INTERNAL", "STOPPING", "BUSY")


class ProtocolError(CorrigoError):
    """A request or reply that violates the protocol; `code` is one of `Err`."""

    def __init__(self, code: str, message: str, req_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req_id = req_id


@dataclass
class Request:
    id: int | str | None
    cmd: str
    args: dict[str, Any] = field(default_factory=dict)


# ----- msgpack -----
def _default(obj: Any) -> Any:
    """Numpy values a body may put in results (scene attributes, actions) become plain msgpack."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a corrigo message")


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, default=_default)


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not allowed")


def unpack(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Decode one msgpack document with hard limits (raises ValueError on anything odd)."""
    if len(data) > max_bytes:
        raise ValueError(f"message of {len(data)} bytes exceeds {max_bytes}")
    return msgpack.unpackb(
        data, raw=False, strict_map_key=True, use_list=True, ext_hook=_no_ext, timestamp=0,
        max_str_len=max_bytes, max_bin_len=max_bytes,
        max_array_len=max_bytes, max_map_len=max_bytes // 2 + 1, max_ext_len=0,
    )


# ----- requests (server side) -----
def parse_request(data: bytes) -> Request:
    """Validate a request frame; raise ProtocolError with the request id when it was readable."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(Err.BAD_REQUEST, f"request of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        # requests never need long strings, so the unpacker refuses them outright
        msg = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True, ext_hook=_no_ext, timestamp=0,
            max_str_len=MAX_STRING_BYTES, max_bin_len=MAX_STRING_BYTES,
            max_array_len=4096, max_map_len=64, max_ext_len=0,
        )
    except Exception as e:  # msgpack raises several types (ValueError, ExtraData, StackError, ...)
        raise ProtocolError(Err.BAD_REQUEST, f"not a valid msgpack request: {_short(e)}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(Err.BAD_REQUEST, "a request must be a msgpack map")
    req_id = msg.get("id")
    if req_id is not None and not (_is_int(req_id) or (isinstance(req_id, str) and len(req_id) <= MAX_ID_CHARS)):
        raise ProtocolError(Err.BAD_REQUEST, f"'id' must be an integer or a string of at most {MAX_ID_CHARS} chars")
    unknown = set(msg) - {"v", "id", "cmd", "args"}
    if unknown:
        raise ProtocolError(Err.BAD_REQUEST, f"unknown field(s) {_names(unknown)}", req_id)
    v = msg.get("v")
    if not _is_int(v):
        raise ProtocolError(Err.BAD_REQUEST, "'v' (protocol version, an integer) is required", req_id)
    if v != PROTOCOL_VERSION:
        raise ProtocolError(Err.UNSUPPORTED_VERSION, f"server speaks protocol {PROTOCOL_VERSION}, request has {v}", req_id)
    cmd = msg.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError(Err.BAD_REQUEST, "'cmd' (a string) is required", req_id)
    if cmd not in COMMANDS:
        raise ProtocolError(Err.UNKNOWN_COMMAND, f"unknown command {cmd[:40]!r} (known: {', '.join(COMMANDS)})", req_id)
    args = msg.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(Err.BAD_REQUEST, "'args' must be a map", req_id)
    extra = set(args) - ARGS.get(cmd, frozenset())
    if extra:
        raise ProtocolError(Err.BAD_REQUEST, f"unknown argument(s) {_names(extra)} for {cmd}", req_id)
    try:
        _check_args(cmd, args)
    except ProtocolError as e:
        e.req_id = req_id
        raise
    return Request(req_id, cmd, args)


def _check_args(cmd: str, args: dict[str, Any]) -> None:
    if cmd == "hello":
        role = args.get("role", "observe")
        if role not in ROLES:
            raise ProtocolError(Err.BAD_REQUEST, f"hello: role must be one of {', '.join(ROLES)}")
        if not isinstance(args.get("takeover", False), bool):
            raise ProtocolError(Err.BAD_REQUEST, "hello: takeover must be a boolean")
        if not isinstance(args.get("client", ""), str):
            raise ProtocolError(Err.BAD_REQUEST, "hello: client must be a string")
    elif cmd == "send_action":
        if "action" not in args:
            raise ProtocolError(Err.BAD_REQUEST, "send_action: 'action' is required")
    elif cmd == "reset":
        seed = args.get("seed")
        if not (_is_int(seed) and 0 <= seed < 2**32):
            raise ProtocolError(Err.BAD_REQUEST, "reset: 'seed' must be an integer in [0, 2**32)")


def validate_action(action: Any, features: Mapping[str, Feature]) -> dict[str, Any]:
    """Check an action map against the body's `action_features`: every key, exact shapes, finite
    numbers. Returns numpy float64 arrays (or a float for one-element features)."""
    if not isinstance(action, dict):
        raise ProtocolError(Err.BAD_REQUEST, "action must be a map of feature name to numbers")
    missing = [k for k in features if k not in action]
    if missing:
        raise ProtocolError(Err.BAD_REQUEST, f"action is missing {_names(missing)}")
    extra = set(action) - set(features)
    if extra:
        raise ProtocolError(Err.BAD_REQUEST, f"action has unknown key(s) {_names(extra)}")
    out: dict[str, Any] = {}
    for key, feat in features.items():
        size = int(np.prod(feat.shape)) if feat.shape else 1
        value = action[key]
        if size == 1 and _is_number(value):
            values = [value]
        elif isinstance(value, list) and len(value) == size and all(_is_number(x) for x in value):
            values = value
        else:
            want = "a number" if size == 1 else f"a list of {size} numbers"
            raise ProtocolError(Err.BAD_REQUEST, f"action {key} must be {want}")
        floats = [float(x) for x in values]
        if not all(math.isfinite(x) for x in floats):
            raise ProtocolError(Err.BAD_REQUEST, f"action {key} has a NaN or infinite value")
        out[key] = floats[0] if size == 1 else np.array(floats).reshape(feat.shape)
    q = out.get("ee.quat_xyzw")
    if q is not None:
        norm = math.sqrt(sum(min(abs(float(x)), 1e150) ** 2 for x in q))  # capped: no overflow
        if not (1e-6 < norm < 1e6):
            raise ProtocolError(Err.BAD_REQUEST, "action ee.quat_xyzw must have a non-zero, finite norm")
    return out


def encode_action(action: Mapping[str, Any]) -> dict[str, Any]:
    """An action dict as msgpack-ready values: arrays become lists of floats, scalars floats."""
    out: dict[str, Any] = {}
    for k, v in action.items():
        arr = np.asarray(v, dtype=np.float64)
        out[str(k)] = float(arr) if arr.ndim == 0 else [float(x) for x in arr.reshape(-1)]
    return out


def decode_action(action: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if not isinstance(v, list) else np.asarray(v, dtype=np.float64)) for k, v in action.items()}


def request(req_id: int | str | None, cmd: str, args: Mapping[str, Any] | None = None) -> bytes:
    return pack({"v": PROTOCOL_VERSION, "id": req_id, "cmd": cmd, "args": dict(args or {})})


def reply_ok(req_id: int | str | None, result: Any) -> bytes:
    return pack({"v": PROTOCOL_VERSION, "id": req_id, "ok": True, "result": result})


def reply_error(req_id: int | str | None, code: str, message: str) -> bytes:
    return pack({"v": PROTOCOL_VERSION, "id": req_id, "ok": False,
                 "error": {"code": code, "message": message[:MAX_STRING_BYTES]}})


# ----- observations: msgpack header + binary frames -----
def encode_observation(obs: Mapping[str, Any], *, image_encoding: str = "raw", jpeg_quality: int = 90,
                       first_frame: int = 0) -> tuple[dict[str, Any], list[bytes]]:
    """(spec map for the header, binary frames). Frame indices count from `first_frame`.

    Small 0-d/1-d numeric arrays are inlined as lists; anything else is one raw
    little-endian frame (C order), or a JPEG frame for HxWx3 uint8 images when
    `image_encoding == "jpeg"`. Non-array values (numbers, strings) are inlined.
    """
    specs: dict[str, Any] = {}
    frames: list[bytes] = []
    for key, value in obs.items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            specs[key] = {"value": value}
            continue
        arr = np.asarray(value)
        dt = arr.dtype.name
        if dt not in DTYPES:
            arr = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
            dt = arr.dtype.name
        spec: dict[str, Any] = {"dtype": dt, "shape": list(arr.shape)}
        if arr.ndim <= 1 and arr.size <= INLINE_MAX_ELEMENTS:
            spec["data"] = arr.reshape(-1).tolist()
        elif image_encoding == "jpeg" and dt == "uint8" and arr.ndim == 3 and arr.shape[2] == 3:
            spec.update(encoding="jpeg", frame=first_frame + len(frames))
            frames.append(_jpeg_encode(arr, jpeg_quality))
        else:
            spec.update(encoding="raw", frame=first_frame + len(frames))
            frames.append(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
        specs[key] = spec
    return specs, frames


def decode_observation(specs: Any, frames: Sequence[bytes | memoryview], *, first_frame: int = 0) -> dict[str, Any]:
    """Inverse of `encode_observation`; checks every spec (a peer may be buggy). Raises ValueError."""
    if not isinstance(specs, dict):
        raise ValueError("observation specs must be a map")
    out: dict[str, Any] = {}
    for key, spec in specs.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{key}: spec must be a map")
        if "value" in spec:
            out[key] = spec["value"]
            continue
        dt, shape = spec.get("dtype"), spec.get("shape")
        if dt not in DTYPES or not isinstance(shape, list) or not all(_is_int(s) and 0 <= s < 2**31 for s in shape):
            raise ValueError(f"{key}: bad dtype or shape")
        dtype = np.dtype(dt).newbyteorder("<")
        n = int(np.prod(shape)) if shape else 1
        if "data" in spec:
            data = spec["data"]
            if not isinstance(data, list) or len(data) != n:
                raise ValueError(f"{key}: inline data does not match shape {shape}")
            out[key] = np.asarray(data, dtype=dt).reshape(shape)
            continue
        idx = spec.get("frame")
        if not _is_int(idx) or not first_frame <= idx < first_frame + len(frames):
            raise ValueError(f"{key}: frame index out of range")
        buf = frames[idx - first_frame]
        if spec.get("encoding") == "jpeg":
            arr = _jpeg_decode(bytes(buf))
            if list(arr.shape) != shape:
                raise ValueError(f"{key}: JPEG is {arr.shape}, header says {shape}")
            out[key] = arr
        elif spec.get("encoding") == "raw":
            if len(buf) != n * dtype.itemsize:
                raise ValueError(f"{key}: frame has {len(buf)} bytes, expected {n * dtype.itemsize}")
            out[key] = np.frombuffer(buf, dtype=dtype).reshape(shape).astype(np.dtype(dt))  # a writable native copy
        else:
            raise ValueError(f"{key}: unknown encoding {str(spec.get('encoding'))[:20]!r}")
    return out


def _jpeg_encode(rgb: np.ndarray, quality: int) -> bytes:
    try:
        from PIL import Image
    except ImportError:
        raise RuntimeError("JPEG frames need Pillow (pip install pillow); use image encoding 'raw'") from None
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def _jpeg_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))  # a writable copy


# ----- helpers -----
def features_to_wire(features: Mapping[str, Feature]) -> dict[str, Any]:
    return {k: f.to_dict() for k, f in features.items()}


def features_from_wire(d: Any) -> dict[str, Feature]:
    if not isinstance(d, dict):
        raise ValueError("features must be a map")
    return {str(k): Feature.from_dict(v) for k, v in d.items()}


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and (not isinstance(x, int) or abs(x) < 2**63)


def _names(keys: Any) -> str:
    items = sorted(str(k)[:40] for k in keys)
    return ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")


def _short(e: BaseException) -> str:
    s = str(e) or type(e).__name__
    return s[:120]


def is_finite_number(x: Any) -> bool:
    return _is_number(x) and math.isfinite(float(x))
