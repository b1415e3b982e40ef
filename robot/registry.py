"""String-keyed registries of factories: bodies here, and the same class for policies, skills and stores.

A key is a name (`rule_based`, `mock:arm`) or a prefix (`sim:`, `zmq://`). Entries come from
- `register()` calls;
- lazy providers, `{key or prefix: "module"}`: modules imported on first need that call
  `register()`, so `robot/` never imports the layers above it and built-ins work from a
  source tree without package metadata;
- the entry points of the registry's group (`corrigo.robots`, ...), read on first lookup:
  an installed distribution plugs in with `name = module:factory`. A registered key wins
  over an entry point of the same name (the built-ins are declared as both).
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Generic, Iterable, Literal, Mapping, TypeVar

from robot.errors import CorrigoError
from robot.robot import Robot

T = TypeVar("T")
_SEPARATORS = ":/?"  # where a key may end inside a longer spec


@dataclass
class Entry(Generic[T]):
    key: str
    factory: Callable[..., T] | None  # None: an entry point not loaded yet
    requires: tuple[str, ...] = ()  # importable module names the entry needs
    usage: str = ""  # how it is written, for listings: "zmq://HOST:PORT"
    install: str = ""  # what to install when `requires` is missing
    entry_point: metadata.EntryPoint | None = None

    def missing(self) -> list[str]:
        return [m for m in self.requires if not _importable(m)]


class Registry(Generic[T]):
    """Factories by key. `call_with="spec"` calls `factory(spec, **kw)` (bodies);
    `"argument"` calls `factory(arg, **kw)` with what follows `key:` (`learned:PATH` -> `PATH`)."""

    def __init__(self, kind: str, group: str, providers: Mapping[str, str] | None = None, *,
                 call_with: Literal["spec", "argument"] = "spec", error: type[CorrigoError] = CorrigoError) -> None:
        self.kind, self.group = kind, group
        self.call_with, self.error = call_with, error
        self._providers = dict(providers or {})
        self._entries: dict[str, Entry[T]] = {}
        self._imported: dict[str, str | None] = {}  # provider module -> why it failed to import, or None
        self._entry_points_read = False

    def register(self, key: str, factory: Callable[..., T], *, requires: Iterable[str] = (), usage: str = "",
                 install: str = "") -> None:
        if not key:
            raise ValueError(f"a {self.kind} key must not be empty")
        self._entries[key] = Entry(key, factory, tuple(requires), usage, install)

    def add_provider(self, key: str, module: str) -> None:
        """`module` registers `key` (or keys under that prefix) when imported."""
        self._providers[key] = module

    def reload_entry_points(self) -> None:
        """Forget the entry points read so far; the next lookup reads them again."""
        self._entries = {k: e for k, e in self._entries.items() if e.entry_point is None}
        self._entry_points_read = False

    def make(self, spec: str, **kwargs: Any) -> T:
        entry = self.entry(spec)
        arg = spec if self.call_with == "spec" else _argument(spec, entry.key)
        return self._load(entry)(arg, **kwargs)

    def factory(self, spec: str) -> Callable[..., T]:
        """The factory `spec` names, for callers with their own calling convention."""
        return self._load(self.entry(spec))

    def entry(self, spec: str) -> Entry[T]:
        """The entry for `spec`: an exact key, else the longest matching prefix."""
        self._read_entry_points()
        for key, module in self._providers.items():
            if _matches(spec, key):
                reason = self._import(module)
                if reason:
                    raise self.error(f"{self.kind} {spec!r} needs module {module!r}, which failed to import: {reason}")
        found = self._match(spec)
        if found is None:  # a provider may register keys its own key does not announce
            self._import_all()
            found = self._match(spec)
        if found is None:
            listing = ", ".join(e.usage or e.key for e in self._available()) or "none installed"
            raise self.error(f"unknown {self.kind} {spec!r} (known: {listing})")
        missing = found.missing()
        if missing:
            raise self.error(f"{self.kind} {spec!r} needs {', '.join(missing)}, which is not installed "
                             f"(pip install {found.install or ' '.join(missing)})")
        return found

    def known(self) -> list[str]:
        """Every key that is installed and can be made (providers that fail to import are left out)."""
        return [e.key for e in self._available()]

    # ----- internals -----
    def _available(self) -> list[Entry[T]]:
        self._read_entry_points()
        self._import_all()
        out = []
        for e in sorted(self._entries.values(), key=lambda e: e.key):
            if e.missing():
                continue
            try:
                self._load(e)
            except CorrigoError:  # a broken plugin: it is not advertised, the others are
                continue
            out.append(e)
        return out

    def _match(self, spec: str) -> Entry[T] | None:
        keys = [k for k in self._entries if _matches(spec, k)]
        return self._entries[max(keys, key=len)] if keys else None

    def _import(self, module: str) -> str | None:
        if module not in self._imported:
            self._imported[module] = None  # before importing: the module registers into this registry
            try:
                importlib.import_module(module)
            except ImportError as e:
                self._imported[module] = _one_line(e)
        return self._imported[module]

    def _import_all(self) -> None:
        for module in dict.fromkeys(self._providers.values()):
            self._import(module)

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        try:
            eps = metadata.entry_points(group=self.group)
        except Exception:  # unreadable metadata of some distribution: no plugins, built-ins still work
            return
        for ep in eps:
            if ep.name and ep.name not in self._entries:
                self._entries[ep.name] = Entry(ep.name, None, entry_point=ep)

    def _load(self, entry: Entry[T]) -> Callable[..., T]:
        if entry.factory is None:
            ep = entry.entry_point
            assert ep is not None
            try:
                obj = ep.load()
            except Exception as e:  # any error of a third-party module: one line, naming where it came from
                raise self.error(f"{self.kind} plugin {entry.key!r} ({ep.value}) from {_distribution(ep)} "
                                 f"failed to load: {type(e).__name__}: {_one_line(e)}") from None
            if not callable(obj):
                raise self.error(f"{self.kind} plugin {entry.key!r} ({ep.value}) from {_distribution(ep)} is not callable")
            entry.factory = obj
        return entry.factory


def _matches(spec: str, key: str) -> bool:
    """`sim:` matches `sim:pybullet`, `mock:arm` matches `mock:arm?hz=5`, `learned` matches `learned:PATH`."""
    if not spec.startswith(key):
        return False
    return len(spec) == len(key) or key[-1] in _SEPARATORS or spec[len(key)] in _SEPARATORS


def _argument(spec: str, key: str) -> str:
    rest = spec[len(key):]
    return rest[1:] if rest.startswith(":") and not key.endswith(":") else rest


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package; a module in sys.modules without a spec
        return False


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"distribution {dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ----- bodies: `sim:pybullet`, `sim:mujoco`, `mock:arm`, `zmq://HOST:PORT`, `ur_rtde:HOST` -----
RobotFactory = Callable[..., Robot]
ROBOTS: Registry[Robot] = Registry(
    "robot", "corrigo.robots", {"sim:": "sim", "zmq://": "hw_drivers", "mock:": "hw_drivers", "ur_rtde:": "hw_drivers"})


def register_robot(prefix: str, factory: RobotFactory, *, requires: Iterable[str] = (), usage: str = "",
                   install: str = "") -> None:
    """`--robot PREFIX...` builds `factory(spec, **kwargs)`."""
    ROBOTS.register(prefix, factory, requires=requires, usage=usage, install=install)


def make_robot(spec: str, **kwargs: Any) -> Robot:
    return ROBOTS.make(spec, **kwargs)


def known_robots() -> list[str]:
    return ROBOTS.known()
