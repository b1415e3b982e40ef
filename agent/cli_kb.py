"""`corrigo kb ...`: inspect and manage the corrections knowledge base.

    corrigo kb list [--all] [--kind K] [--skill S] [--object-category C] [--limit N] [--json]
    corrigo kb show ID [--json]
    corrigo kb search "grasp the mug" [-k 5] [--skill pick] [--all]
    corrigo kb add "always put fruit in the basket" --kind task [--effect JSON] [--skill S] ...
    corrigo kb edit ID [--statement S] [--effect JSON] [--reason R]
    corrigo kb disable|enable|undo ID [--reason R]
    corrigo kb export FILE.jsonl
    corrigo kb import FILE.jsonl [--mode merge|replace]
    corrigo kb stats [--json]
    corrigo kb check
    corrigo kb init [PATH]

Every subcommand takes `--kb PATH` (or `sqlite:PATH`, or `new:PATH` to make a new store);
the default is $CORRIGO_KB, else `<user data dir>/corrigo/kb.sqlite`. User mistakes (bad
id, missing, empty or foreign file) give one line on stderr and exit code 2. A store that
fails its check at open is read-only: `list`, `show`, `export`, `stats` and `check` still
work (to rescue what is readable), every command that writes is refused, naming the file.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
from typing import Any, Callable

from agent.cli_args import float_in, int_in, positive_int
from robot.errors import CorrigoError

_SCOPE_FLAGS = ("task", "skill", "object_category", "object", "user", "site")


def _kb_option(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--kb", default=default, metavar="PATH",
                   help="knowledge base file, sqlite:PATH, or new:PATH to make a new one "
                        "(default: $CORRIGO_KB, else the user data dir)")


def _scope_options(p: argparse.ArgumentParser, what: str) -> None:
    for key in _SCOPE_FLAGS:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar=key.upper(), help=f"{what} {key}")


def add_kb_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    kb = sub.add_parser("kb", help="inspect and manage the corrections knowledge base",
                        description="Inspect and manage the corrections knowledge base.")
    _kb_option(kb, None)
    ks = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        p = ks.add_parser(name, help=help, description=help)
        _kb_option(p, argparse.SUPPRESS)  # SUPPRESS: `kb --kb X list` and `kb list --kb X` both work
        return p

    p = cmd("list", "list items (active ones unless --all)")
    p.add_argument("--all", action="store_true", help="include disabled items")
    p.add_argument("--kind", choices=("task", "skill"))
    _scope_options(p, "only items that apply to this")
    p.add_argument("--exact-scope", action="store_true", help="scope filters match equal values only "
                   "(default: an item whose scope key is 'any' matches too)")
    p.add_argument("--limit", type=positive_int)
    p.add_argument("--json", action="store_true", help="one JSON object per line (no embeddings)")

    p = cmd("show", "print one item in full, with its history")
    p.add_argument("id", type=positive_int)
    p.add_argument("--json", action="store_true")

    p = cmd("search", "the items closest in meaning to a text query")
    p.add_argument("query")
    p.add_argument("-k", type=int_in(1, 1000), default=5, help="how many (default 5)")
    p.add_argument("--kind", choices=("task", "skill"))
    _scope_options(p, "only items that apply to this")
    p.add_argument("--all", action="store_true", help="include disabled items")
    p.add_argument("--min-score", type=float_in(-1, 1), help="drop results below this cosine similarity (-1..1)")

    p = cmd("add", "add an item by hand (its statement is embedded for search)")
    p.add_argument("statement")
    p.add_argument("--kind", choices=("task", "skill"), required=True)
    p.add_argument("--effect", default="{}", help='structured effect as JSON, e.g. \'{"type": "preference", '
                   '"target": "basket", "applies_to": "fruit"}\' (types: see corrections_kb/effects.py)')
    _scope_options(p, "applies only to this")
    p.add_argument("--operator", help="who said it (provenance)")
    p.add_argument("--no-embed", action="store_true", help="store without a text embedding (not searchable)")

    p = cmd("edit", "change an item (a new version; the old one stays in its history)")
    p.add_argument("id", type=positive_int)
    p.add_argument("--statement")
    p.add_argument("--effect", help="the new effect as JSON")
    p.add_argument("--reason")

    for name, help in (("disable", "stop retrieving an item (kept, with its history)"),
                       ("enable", "retrieve a disabled item again")):
        p = cmd(name, help)
        p.add_argument("id", type=positive_int)
        p.add_argument("--reason")
    p = cmd("undo", "restore an item's content before its last change; --last: take back the last episode's lessons")
    p.add_argument("id", type=positive_int, nargs="?")
    p.add_argument("--last", action="store_true", help="what the last episode taught: new items disabled, "
                   "widened ones narrowed again, superseded ones enabled again")
    p.add_argument("--reason")

    p = cmd("export", "write every item, its history and use log to a JSON-lines file")
    p.add_argument("file")
    p = cmd("import", "read a file written by export")
    p.add_argument("file")
    p.add_argument("--mode", choices=("merge", "replace"), default="merge",
                   help="merge (default: match items by uid, newer wins) or replace the whole store")

    p = cmd("stats", "counts, use totals and sizes")
    p.add_argument("--json", action="store_true")
    cmd("check", "check the file's integrity and that every item has its history and embeddings")
    p = cmd("init", "make a new, empty knowledge base (PATH must not exist yet, or be an empty file)")
    p.add_argument("path", nargs="?", metavar="PATH", help="where (default: --kb, $CORRIGO_KB, the user data dir)")
    kb.set_defaults(kb_parser=kb)


# ----- handlers -----
def cmd_kb(args: argparse.Namespace) -> int:
    if not getattr(args, "kb_command", None):
        args.kb_parser.print_help()
        return 2
    try:
        return _HANDLERS[args.kb_command](args)
    except ValueError as e:  # bad filter values and the like
        raise CorrigoError(str(e)) from None
    except BrokenPipeError:  # `corrigo kb list | head`
        sys.stderr.close()
        return 0


def _spec(args: argparse.Namespace) -> str:
    from corrections_kb.store import default_kb_path

    if args.kb is not None and not args.kb.strip():  # `--kb "$UNSET"`: not the default store
        raise CorrigoError("--kb is empty; give a path, sqlite:PATH or new:PATH")
    return args.kb or os.environ.get("CORRIGO_KB") or str(default_kb_path())


def _open(args: argparse.Namespace, create: bool = False, write: bool = False) -> Any:
    """The store; `write`: this command writes, so a store that refuses writes fails now,
    before any work (an embedding model loading) is done."""
    from corrections_kb.store import open_store

    store = open_store(_spec(args), create=create)
    corrupt = store.corrupt
    if write and corrupt:
        store.close()
        raise CorrigoError(corrupt)
    return store


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in _SCOPE_FLAGS if getattr(args, k, None)}


def _time(t: float | None) -> str:
    return "-" if t is None else _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _scope_text(scope: dict[str, Any]) -> str:
    s = ", ".join(f"{k}={v}" for k, v in scope.items() if v is not None)
    return s or "anywhere"


def _width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


def _print_rows(items: list[Any], sims: list[str] | None = None) -> None:
    head = f"{'id':>6}  {'kind':5}  {'state':9}  {'uses':>5} {'ok':>4} {'bad':>4}  "
    if sims is not None:
        head += f"{'sim':>5}  "
    print(head + "statement  [scope]")
    room = max(_width() - len(head), 30)
    for i, k in enumerate(items):
        line = f"{k.id:>6}  {k.kind:5}  {k.state:9}  {k.uses:>5} {k.successes:>4} {k.contradictions:>4}  "
        if sims is not None:
            line += f"{sims[i]:>5}  "
        scope = f"  [{_scope_text(k.scope)}]" if any(k.scope.values()) else ""  # the whole scope, always
        room_for_statement = max(room - len(scope), 20)
        statement = k.statement if len(k.statement) <= room_for_statement else k.statement[: room_for_statement - 1] + "…"
        print(line + statement + scope)


def kb_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        items = store.list(active_only=not args.all, kind=args.kind, limit=args.limit, with_embeddings=False,
                           scope_match="exact" if args.exact_scope else "applies", **_filters(args))
        if args.json:
            for k in items:
                print(json.dumps(k.to_dict(embeddings=False)))
            return 0
        if not items:
            print("no items" + ("" if args.all else " (active; --all to include disabled ones)"))
            return 0
        _print_rows(items)
        total = store.count(active_only=False)
        print(f"{len(items)} shown, {total} in {store.location}")
    return 0


def _changes(prev: Any, cur: Any) -> str:
    out = []
    for f in ("kind", "statement", "effect", "scope", "provenance", "active", "text_embedding", "visual_embedding"):
        a, b = getattr(prev, f), getattr(cur, f)
        if f.endswith("embedding"):
            same = (a is None and b is None) or (a is not None and b is not None and a.tobytes() == b.tobytes())
            if not same:
                out.append(f"{f} changed")
        elif a != b:
            out.append(f"{f}: {a!r} -> {b!r}" if f in ("statement", "active", "kind") else f"{f} changed")
    return "; ".join(out)


def kb_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        k = store.get(args.id)
        hist = store.history(args.id)
    if args.json:
        d = k.to_dict(embeddings=False)
        d["effect_type"] = k.effect.type
        d["history"] = [{"version": h.version, "action": h.action, "at": h.at, "reason": h.reason,
                         "parent_version": h.parent_version} for h in hist]
        print(json.dumps(d, indent=2))
        return 0

    def emb(v: Any) -> str:
        return "none" if v is None else f"{v.size}-d"

    print(f"item {k.id}  ({'active' if k.active else 'DISABLED'}, version {k.version}, uid {k.uid})")
    print(f"  kind:        {k.kind}")
    print(f"  statement:   {k.statement}")
    print(f"  effect:      {json.dumps(k.effect.to_dict())}")
    print(f"  effect type: {_effect_type(k.effect)}")
    print(f"  scope:       {_scope_text(k.scope)}")
    print(f"  provenance:  {json.dumps(k.provenance) if k.provenance else '-'}")
    print(f"  uses:        {k.uses} ({k.successes} successes, {k.contradictions} contradictions; score {k.score})")
    print(f"  embeddings:  text {emb(k.text_embedding)}, visual {emb(k.visual_embedding)}")
    print(f"  created:     {_time(k.created_at)}   updated: {_time(k.updated_at)}")
    print("history:")
    prev = None
    for h in hist:
        what = _changes(prev, h.item) if prev is not None else h.item.statement
        why = f"  ({h.reason})" if h.reason else ""
        print(f"  v{h.version:<3} {_time(h.at)}  {h.action:8} {what}{why}")
        prev = h.item
    return 0


def kb_search(args: argparse.Namespace) -> int:
    from corrections_kb.embed import get_text_embedder

    with _open(args) as store:
        filters: dict[str, Any] = {**_filters(args), "active": None if args.all else True}
        if args.kind:
            filters["kind"] = args.kind
        q = get_text_embedder().embed(args.query)
        hits = store.search(query_text_emb=q, k=args.k, filters=filters, min_score=args.min_score)
    if not hits:
        print("no matching knowledge")
        return 0
    _print_rows([h.knowledge for h in hits], [f"{h.score:.2f}" for h in hits])
    return 0


def _effect_type(effect: Any) -> str:
    from corrections_kb.effects import RawEffect

    if isinstance(effect, RawEffect):
        tag = effect.get("type")
        what = f"unknown type {tag!r}" if tag is not None else "no type"
        return f"raw ({what}: kept as it is, never applied)"
    return f"{effect.type} ({type(effect).__name__})"


def _effect_arg(text: str) -> Any:
    """The `--effect` JSON as a typed effect (checked before anything slow happens)."""
    from corrections_kb.effects import EFFECT_TYPES, effect_from_dict

    try:
        v = json.loads(text)
    except ValueError as e:
        raise CorrigoError(f"--effect is not valid JSON: {e}") from None
    if not isinstance(v, dict):
        raise CorrigoError(f"--effect must be a JSON object, e.g. '{{\"type\": \"preference\", \"target\": "
                           f"\"basket\"}}' (types: {', '.join(EFFECT_TYPES)})")
    return effect_from_dict(v)  # InvalidKnowledge: a one-line error naming the field


def kb_add(args: argparse.Namespace) -> int:
    import time

    from corrections_kb.knowledge import Knowledge

    effect = _effect_arg(args.effect)
    prov: dict[str, Any] = {"source": "corrigo kb add", "time": time.time(), "utterances": [args.statement]}
    if args.operator:
        prov["operator"] = args.operator
    with _open(args, create=True, write=True) as store:
        emb = None
        if not args.no_embed:
            from corrections_kb.embed import get_text_embedder

            emb = get_text_embedder().embed(args.statement)
        k = Knowledge(kind=args.kind, statement=args.statement, effect=effect, scope=_filters(args),
                      text_embedding=emb, provenance=prov)
        item_id = store.add(k, reason="added by hand")
    print(f"added item {item_id}")
    return 0


def kb_edit(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.effect is not None:
        changes["effect"] = _effect_arg(args.effect)
    with _open(args, write=True) as store:
        cur = store.get(args.id)
        if args.statement is not None and args.statement != cur.statement:
            changes["statement"] = args.statement
            if cur.text_embedding is not None:  # keep it searchable by its new wording
                from corrections_kb.embed import get_text_embedder

                changes["text_embedding"] = get_text_embedder().embed(args.statement)
        if not changes:
            raise CorrigoError("nothing to change: give --statement and/or --effect")
        k = store.update(args.id, reason=args.reason, **changes)
    print(f"item {k.id} is now version {k.version}")
    return 0


def _toggle(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with _open(args, write=True) as store:
            before = store.get(args.id)
            k = getattr(store, name)(args.id, reason=args.reason)
        if k.version == before.version:
            print(f"item {k.id} was already {'enabled' if k.active else 'disabled'}")
        else:
            state = "active" if k.active else "disabled"
            print(f"item {k.id}: {name} -> version {k.version} ({state}): {k.statement}")
        return 0

    return run


def kb_undo(args: argparse.Namespace) -> int:
    if args.last == (args.id is not None):
        raise CorrigoError("give an item id, or --last for what the last episode taught")
    if args.id is not None:
        return _toggle("undo")(args)
    from agent.knowledge import undo_episode

    with _open(args, write=True) as store:
        episode, done = undo_episode(store)
    if episode is None:
        print("nothing to undo: no episode has taught this knowledge base anything")
        return 0
    print(f"took back what episode {episode} taught:")
    for line in done:
        print(f"  {line}")
    return 0


def kb_export(args: argparse.Namespace) -> int:
    skipped: list[int] = []
    with _open(args) as store:
        n = store.export_jsonl(args.file, skipped=skipped)
    print(f"exported {n} items to {args.file}")
    if skipped:  # a rescue from a damaged store: say what it could not save
        print(f"corrigo: warning: items {', '.join(map(str, skipped))} could not be read and are not in "
              f"{args.file}", file=sys.stderr)
        return 1
    return 0


def kb_import(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.file):
        raise CorrigoError(f"no such file: {args.file}")
    with _open(args, create=True, write=True) as store:
        report = store.import_jsonl(args.file, mode=args.mode)
    print(f"imported {args.file} ({args.mode}): {report}")
    return 0


def kb_stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        s = store.stats()
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"knowledge base {s['path']} (schema v{s['schema_version']}, {s['db_bytes'] / 1e6:.2f} MB on disk)")
    print(f"  items:      {s['items']} ({s['active']} active, {s['inactive']} disabled)")
    for kind, c in sorted(s["by_kind"].items()):
        print(f"    {kind:8} {c['active']} active, {c['inactive']} disabled")
    if s["active_by_skill"]:
        print("  active by skill: " + ", ".join(f"{k} {v}" for k, v in s["active_by_skill"].items()))
    print(f"  uses:       {s['uses']} ({s['successes']} successes, {s['contradictions']} contradictions)")
    print(f"  embeddings: text {s['embeddings']['text']} ({s['dims']['text']}-d, {s['models']['text']}), "
          f"visual {s['embeddings']['visual']} ({s['dims']['visual']}-d, {s['models']['visual']})")
    print(f"  history:    {s['history_rows']} versions; use log {s['use_log_rows']} rows")
    return 0


def kb_check(args: argparse.Namespace) -> int:
    with _open(args) as store:
        problems = store.check()
    for p in problems:
        print(p)
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def kb_init(args: argparse.Namespace) -> int:
    from corrections_kb.store import open_store

    if args.path is not None and not args.path.strip():
        raise CorrigoError("kb init: PATH is empty")
    spec = args.path or _spec(args)
    if spec == "default":
        from corrections_kb.store import default_kb_path

        spec = str(default_kb_path())
    if spec.startswith(("sqlite:", "new:")):
        spec = spec.partition(":")[2]
    with open_store(f"new:{spec}") as store:
        print(f"made a new knowledge base at {store.location}")
    return 0


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": kb_list, "show": kb_show, "search": kb_search, "add": kb_add, "edit": kb_edit,
    "disable": _toggle("disable"), "enable": _toggle("enable"), "undo": kb_undo,
    "export": kb_export, "import": kb_import, "stats": kb_stats, "check": kb_check, "init": kb_init,
}


def _register() -> None:
    """Hook into agent.cli. Under `python -m agent.cli` that module also runs as __main__ (a
    second copy), so register into whichever copies exist."""
    import agent.cli

    mods = [agent.cli]
    main = sys.modules.get("__main__")
    if main is not None and main is not agent.cli and getattr(getattr(main, "__spec__", None), "name", None) \
            == "agent.cli":
        mods.append(main)
    for mod in mods:
        if add_kb_parser not in mod._EXTRA_PARSERS:
            mod._EXTRA_PARSERS.append(add_kb_parser)
        mod.command("kb")(cmd_kb)


_register()
