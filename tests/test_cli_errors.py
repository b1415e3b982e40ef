"""Every `corrigo` subcommand's error paths, as one table: (argv, setup, needle).

Each row runs the real command line (`python -m agent.cli`, tests/cli_helpers.cli) with one bad
input and asserts what a user sees: exit code 2, exactly one `corrigo: error: ...` line naming the
problem (`needle`), no traceback. Rows must fail before any slow work (no simulator episode, no
model loading), so the whole table runs in parallel threads in well under a minute.

`{t}` in an argument is the row's own temporary directory; `setup(t)` puts files there first.
The store's own faults (0-byte file, empty path, a malformed page) have rows here too; the
byte-by-byte variants are in tests/test_kb_corrupt.py and tests/faults/test_store_flip.py.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from cli_helpers import assert_one_line_error, cli

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Row:
    argv: tuple[str, ...]
    needle: str
    setup: Setup | None = None
    id: str = ""


def row(argv: str | list[str], needle: str, setup: Setup | None = None, id: str = "") -> Row:
    args = tuple(argv.split()) if isinstance(argv, str) else tuple(argv)
    return Row(args, needle, setup, id or re.sub(r"[^\w.=,:-]+", "_", " ".join(args).replace("{t}/", ""))[:90])


# ----- setups -----
def file(name: str, text: str = "") -> Setup:
    def make(t: Path) -> None:
        p = t / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return make


def files(*makers: Setup) -> Setup:
    def make(t: Path) -> None:
        for m in makers:
            m(t)
    return make


def scene(objects: str) -> Setup:
    return file("scene.yaml", "objects:\n" + objects)


def dataset(info: object) -> Setup:
    """A dataset folder whose meta/info.json is `info` (nothing else is read before it is checked)."""
    return file("ds/meta/info.json", json.dumps(info))


GOOD_FEATURES = {"observation.state": {"dtype": "float32", "shape": [15], "names": None},
                 "action": {"dtype": "float32", "shape": [8], "names": None}}


def checkpoint(state_text: str) -> Setup:
    """A training run whose newest checkpoint has `state_text` as its train_state.json."""
    return files(file("run/checkpoints/epoch-001/config.json", json.dumps({"model": {}})),
                 file("run/checkpoints/epoch-001/train_state.json", state_text))


def kb_store(t: Path) -> None:
    """A healthy store with item 1, at the path CORRIGO_KB points to."""
    from corrections_kb.knowledge import Knowledge
    from corrections_kb.store import SqliteKnowledgeStore

    with SqliteKnowledgeStore(t / "kb.sqlite") as s:
        s.add(Knowledge(kind="task", statement="always put fruit in the basket",
                        effect={"type": "preference", "target": "basket", "applies_to": "fruit"}))


def zero_byte_store(t: Path) -> None:
    (t / "kb.sqlite").write_bytes(b"")


def malformed_store(t: Path) -> None:
    """A store whose index page of items is overwritten: `kb check` calls it malformed."""
    from tests.store_files import flip, page_size, root_pages

    kb_store(t)
    p = t / "kb.sqlite"
    start = (root_pages(p)["items_kind_active"] - 1) * page_size(p)
    for pos in range(start, start + 16):
        flip(p, pos)


def key_pair(name: str) -> Setup:
    return files(file(f"keys/{name}.key", "public"), file(f"keys/{name}.key_secret", "secret"))


RUN = "run --task put_the_red_block_in_the_blue_bowl --kb none --no-interactive --no-realtime --max-time 5"


def run(extra: str, needle: str, setup: Setup | None = None, id: str = "") -> Row:
    argv = [a.replace("_", " ") if a.startswith("put_") else a for a in RUN.split()] + extra.split()
    return row(argv, needle, setup, id or "run " + extra)


TABLE: list[Row] = [
    # ----- top level -----
    row("nope", "invalid choice"),
    row("--nope", "unrecognized arguments"),
    # ----- demo -----
    row("demo --seed abc", "--seed"),
    row("demo --seed -1", "--seed"),
    row("demo --robot nope:x", "unknown robot"),
    # ----- run -----
    row("run --kb none --no-interactive", "exactly one of --task"),
    row(["run", "--task", "x", "--env", "corrigo/PickPlace-v0", "--kb", "none"], "exactly one of --task"),
    row("run --env corrigo/Nope-v0 --kb none --no-interactive", "Nope"),
    row(["run", "--task", "  ", "--kb", "none", "--no-interactive"], "the task is empty"),
    run("--record {t}/f", "--record", file("f"), id="run --record FILE (FileExistsError before)"),
    run("--record {t}/f/sub", "is a file", file("f")),
    run("--policy vlm:x", "unknown policy"),
    run("--policy learned:{t}/nothing", "no such checkpoint"),
    run("--policy rule_based:x", "takes no argument"),
    run("--corrections {t}/missing.txt", "cannot read corrections file"),
    run("--corrections {t}/c.txt", "line 1", file("c.txt", "soon move left\n")),
    run("--corrections {t}/c.txt", "finite", file("c.txt", "9" * 400 + " move left\n")),
    run("--max-time nan", "--max-time"),
    run("--max-time inf", "--max-time"),
    run("--max-time -1", "--max-time"),
    run("--max-time 1e999", "--max-time"),
    run("--max-time abc", "--max-time"),
    run("--seed -1", "--seed", id="run --seed -1 (numpy ValueError before)"),
    run("--seed 1.5", "--seed"),
    run("--image-size 0", "--image-size"),
    run("--image-size 100000", "--image-size"),
    run("--cameras nope", "unknown camera"),
    run("--learn sometimes", "--learn"),
    run("--viewpoint up", "--viewpoint"),
    run("--robot nope:x", "unknown robot"),
    run("--robot mock:arm?hz=nan", "mock:arm"),
    run("--robot mock:arm?hz=fast", "bad value"),
    run("--robot mock:arm?speed=1", "unknown option"),
    run("--robot zmq://127.0.0.1:1?timeout=inf", "finite"),
    run("--robot zmq://", "bad robot address"),
    run("--scene nope", "not found"),
    run("--scene {t}/scene.yaml", "off the table", scene("  - {type: block, colour: red, pose: {x: 50, y: 0}}\n"),
        id="run --scene pose 50 m away"),
    run("--scene {t}/scene.yaml", "finite", scene("  - {type: block, colour: red, pose: {x: .nan, y: 0}}\n")),
    run("--scene {t}/scene.yaml", "region", scene("  - {type: block, colour: red, region: {x: .nan, y: [0, 0.1]}}\n"),
        id="run --scene region x nan"),
    run("--scene {t}/scene.yaml", "region", scene("  - {type: block, colour: red, region: {yaw: [.nan, .inf]}}\n"),
        id="run --scene region yaw nan,inf (OverflowError before)"),
    run("--scene {t}/scene.yaml", "scale", scene("  - {type: block, colour: red, scale: .inf}\n")),
    run("--scene {t}/scene.yaml", "size", scene("  - {type: block, colour: red, size: .nan}\n")),
    run("--scene {t}/scene.yaml", "broken YAML", file("scene.yaml", "objects: [\n")),
    run("--scene {t}/scene.yaml", "did you mean", scene("  - {type: block, colur: red}\n")),
    # ----- envs -----
    row("envs --backend nope", "--backend"),
    row("envs --check --backend nope", "--backend"),
    # ----- kb (usage; store corruption rows are with the store's tests) -----
    row("kb nope", "invalid choice"),
    row("kb show abc", "argument id"),
    row("kb show 0", "argument id"),
    row("kb show 999", "999", kb_store),
    row("kb list --limit -1", "--limit"),
    row("kb list --limit x", "--limit"),
    row("kb list --kind nope", "--kind"),
    row("kb search grasp -k 0", "-k"),
    row("kb search grasp --min-score nan", "--min-score"),
    row("kb add x", "--kind"),
    row(["kb", "add", "x", "--kind", "task", "--effect", "{bad"], "--effect is not valid JSON"),
    row(["kb", "add", "x", "--kind", "task", "--effect", "[1]"], "--effect must be a JSON object"),
    row(["kb", "add", "x", "--kind", "skill", "--no-embed", "--effect",
         '{"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [NaN, 0, 0]}'], "finite"),
    row("kb edit 1", "nothing to change", kb_store),
    row("kb edit 999 --statement y", "999", kb_store),
    row("kb disable 999", "999", kb_store),
    row("kb enable 999", "999", kb_store),
    row("kb undo", "give an item id", kb_store),
    row("kb undo 1 --last", "give an item id", kb_store),
    row("kb export {t}/nodir/x.jsonl", "nodir", kb_store),
    row("kb import {t}/missing.jsonl", "no such file"),
    row("kb import {t}/x.jsonl --mode nope", "--mode"),
    # ----- the store itself (CORRIGO_KB is {t}/kb.sqlite) -----
    row("kb list", "0 bytes", zero_byte_store, id="kb list on a 0-byte store"),
    row("kb add x --kind task --no-embed", "0 bytes", zero_byte_store, id="kb add on a 0-byte store"),
    row("kb add x --kind task --no-embed --kb sqlite:", "sqlite:", id="kb add --kb sqlite: (empty path)"),
    row("kb add x --kind task --no-embed", "corrigo kb check", malformed_store, id="kb add on a malformed store"),
    row("kb disable 1", "corrigo kb check", malformed_store, id="kb disable on a malformed store"),
    row("kb list --kb new:{t}/kb.sqlite", "already exists", kb_store, id="kb --kb new: on an existing store"),
    row("kb init {t}/kb.sqlite", "already exists", kb_store, id="kb init on an existing store"),
    row(RUN.replace("--kb none", "--kb sqlite:").split(), "sqlite:", id="run --kb sqlite: (empty path)"),
    row(RUN.replace("--kb none", "--kb=").split(), "--kb is empty", id="run --kb '' (silently no store before)"),
    # ----- eval -----
    row("eval --suite nope --out {t}/o", "unknown suite"),
    row("eval --rounds 0 --out {t}/o", "--rounds"),
    row("eval --episodes -1 --out {t}/o", "--episodes"),
    row("eval --workers 0 --out {t}/o", "--workers"),
    row("eval --noise 2 --out {t}/o", "--noise"),
    row("eval --noise nan --out {t}/o", "--noise"),
    row("eval --out {t}/f", "is a file", file("f"), id="eval --out FILE (FileExistsError before)"),
    row("eval --out {t}/f/sub", "is a file", file("f")),
    # ----- serve -----
    row("serve --workspace-min nan,nan,nan", "--workspace-min"),
    row("serve --workspace-max=inf,inf,inf", "--workspace-max"),
    row("serve --max-ee-step=inf", "--max-ee-step"),
    row("serve --lease 0", "--lease"),
    row("serve --lease nan", "--lease"),
    row("serve --max-ee-step 0", "--max-ee-step"),
    row("serve --max-ee-step 2", "--max-ee-step"),
    row("serve --workspace-min 0.1,0.2", "three comma-separated"),
    row("serve --workspace-min 0.1,x,0.2", "--workspace-min"),
    row("serve --workspace-max 1e6,0,0", "within"),
    row("serve --workspace-min 0.9,0,0.1 --workspace-max 0.5,0.5,0.5", "below workspace_max"),
    row("serve --watchdog-ms nan", "--watchdog-ms"),
    row("serve --watchdog-ms 0", "--watchdog-ms"),
    row("serve --jpeg-quality 0", "--jpeg-quality"),
    row("serve --image-encoding png", "--image-encoding"),
    row("serve --mode fast", "--mode"),
    row("serve --seed -1", "--seed"),
    row("serve --plugin no_such_module_xyz", "--plugin"),
    row("serve --bind tcp://127.0.0.1:99999 --robot mock:arm", "bad port"),
    row("serve --bind tcp://127.0.0.1:5555 --pub-bind tcp://127.0.0.1:70000 --robot mock:arm", "bad port"),
    row("serve --curve-keys {t}/keys --robot mock:arm", "--allow"),
    row("serve --allow {t}/a.key --robot mock:arm", "--curve-keys"),
    row("serve --robot nope:x", "unknown robot"),
    # ----- keys -----
    row("keys", "keys generate"),
    row("keys generate {t}/f", "is a file", file("f"), id="keys generate FILE (FileExistsError before)"),
    row("keys generate {t}/f/sub", "is a file", file("f")),
    row("keys generate {t}/keys", "exists", key_pair("server")),
    row("keys generate {t}/keys --name alice", "alice.key exists", file("keys/alice.key", "a client's public key")),
    row("keys generate {t}/keys --name ../x", "--name"),
    # ----- collect -----
    row("collect --out {t}/o", "exactly one of --env"),
    row("collect --env corrigo/PickPlace-v0 --suite smoke --out {t}/o", "exactly one of --env"),
    row("collect --env corrigo/Nope-v0 --out {t}/o", "Nope"),
    row("collect --env , --out {t}/o", "--env is empty"),
    row("collect --env corrigo/PickPlace-v0", "--out"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/f", "is a file", file("f")),
    row("collect --env corrigo/PickPlace-v0 --out {t}/f/sub", "is a file", file("f"),
        id="collect --out under a FILE (NotADirectoryError before)"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/o --episodes 0", "--episodes"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/o --max-time nan", "--max-time"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/o --start-seed -3", "--start-seed"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/o --robot mock:arm", "simulated bodies only"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/o --operator nope", "unknown operator"),
    row("collect --suite nope --out {t}/o", "unknown suite"),
    row("collect --suite smoke --phase test --out {t}/o", "--phase"),
    row("collect --env corrigo/PickPlace-v0 --out {t}/o --policy vlm:x", "unknown policy"),
    # ----- train -----
    row("train --out {t}/o", "--data"),
    row("train --data {t}/nope --out {t}/o", "no such dataset"),
    row("train --data {t} --out {t}/o", "not a dataset"),
    row("train --data {t}/ds --out {t}/f", "is a file", files(file("f"), dataset({}))),
    row("train --data {t}/ds --out {t}/o --epochs 0", "--epochs"),
    row("train --data {t}/ds --out {t}/o --lr nan", "--lr"),
    row("train --data {t}/ds --out {t}/o --lr inf", "--lr"),
    row("train --data {t}/ds --out {t}/o --lr 0", "--lr"),
    row("train --data {t}/ds --out {t}/o --correction-share 1", "--correction-share"),
    row("train --data {t}/ds --out {t}/o --val-fraction nan", "--val-fraction"),
    row("train --data {t}/ds --out {t}/o --batch-size 1", "--batch-size"),
    row("train --data {t}/ds --out {t}/o --images on", "--images"),
    row("train --data {t}/ds --out {t}/o --init {t}/nothing", "no such checkpoint", dataset({})),
    row("train --data {t}/ds --out {t}/run --resume", "train_state.json", checkpoint("{corrupt"),
        id="train --resume corrupt train_state.json (JSONDecodeError before)"),
    row("train --data {t}/ds --out {t}/run --resume", "incomplete checkpoint", checkpoint('{"epoch": "x"}')),
    row("train --data {t}/ds --out {t}/run", "--resume", checkpoint("{}")),
    row("train --data {t}/ds --out {t}/o", "fps", dataset({"fps": -1, "features": GOOD_FEATURES}),
        id="train dataset info fps -1"),
    row("train --data {t}/ds --out {t}/o", "fps", dataset({"fps": float("nan"), "features": GOOD_FEATURES}),
        id="train dataset info fps NaN"),
    row("train --data {t}/ds --out {t}/o", "observation.state",
        dataset({"fps": 20, "features": {**GOOD_FEATURES, "observation.state": {"dtype": "float32", "shape": [0]}}}),
        id="train dataset info state shape [0]"),
    row("train --data {t}/ds --out {t}/o", "shape",
        dataset({"fps": 20, "features": {**GOOD_FEATURES, "action": {"dtype": "float32", "shape": []}}})),
    row("train --data {t}/ds --out {t}/o", "features", dataset({"fps": 20})),
    row("train --data {t}/ds --out {t}/o", "total_frames", dataset({"fps": 20, "features": GOOD_FEATURES, "total_frames": -5})),
    row("train --data {t}/ds --out {t}/o", "JSON object", dataset([1, 2])),
    row("train --data {t}/ds --out {t}/o", "unreadable", file("ds/meta/info.json", "{not json")),
    # ----- policy-eval -----
    row("policy-eval", "exactly one of --env"),
    row("policy-eval --env corrigo/PickPlace-v0 --json {t}/nodir/x.json", "no such directory",
        id="policy-eval --json in a missing dir (FileNotFoundError after the run before)"),
    row("policy-eval --env corrigo/PickPlace-v0 --json {t}", "is a directory"),
    row("policy-eval --env corrigo/PickPlace-v0 --episodes 0", "--episodes"),
    row("policy-eval --env corrigo/PickPlace-v0 --policy learned:{t}/nothing", "no such checkpoint"),
    row("policy-eval --env corrigo/PickPlace-v0 --phrasings {t}/missing.yaml", "missing.yaml"),
    row("policy-eval --env corrigo/PickPlace-v0 --image-size 4", "--image-size"),
    # ----- learn-report -----
    row("learn-report", "--out"),
    row("learn-report --out {t}/nothing", "no eval-0.json"),
    row("learn-report --out {t}", "not a policy-eval result", file("eval-0.json", "{broken")),
]


def _env(t: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CORRIGO_KB=str(t / "kb.sqlite"), XDG_DATA_HOME=str(t / "data"))
    env.pop("CORRIGO_DEBUG", None)
    return env


def _run(r: Row, t: Path):  # noqa: ANN202 - subprocess.CompletedProcess
    t.mkdir(parents=True, exist_ok=True)
    if r.setup is not None:
        r.setup(t)
    return cli(*(a.replace("{t}", str(t)) for a in r.argv), timeout=120, env=_env(t))


def _unique(rows: list[Row]) -> list[Row]:
    """Rows with the same arguments (different files) get their needle in the id."""
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.id] = seen.get(r.id, 0) + 1
    return [r if seen[r.id] == 1 else Row(r.argv, r.needle, r.setup, f"{r.id} [{r.needle}]") for r in rows]


TABLE = _unique(TABLE)
IDS = [r.id for r in TABLE]
assert len(set(IDS)) == len(IDS), sorted(i for i in IDS if IDS.count(i) > 1)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run the selected rows at once, a few subprocesses at a time (each is mostly Python start-up)."""
    wanted = {item.callspec.params["r"].id for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "r" in item.callspec.params}
    rows = [r for r in TABLE if r.id in wanted]
    base = tmp_path_factory.mktemp("cli_errors")
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        futures = {r.id: pool.submit(_run, r, base / f"row{n:03d}") for n, r in enumerate(rows)}
    return {k: f.result() for k, f in futures.items()}


@pytest.mark.parametrize("r", TABLE, ids=IDS)
def test_cli_error_is_one_line(r: Row, results: dict[str, object]) -> None:
    assert_one_line_error(results[r.id], r.needle)  # type: ignore[arg-type]


def test_every_subcommand_has_rows() -> None:
    from agent.cli import _COMMANDS, _load_extensions, build_parser

    _load_extensions()
    build_parser()
    covered = {r.argv[0] for r in TABLE}
    assert set(_COMMANDS) <= covered, set(_COMMANDS) - covered


def test_envs_backend_choices_are_the_simulators() -> None:
    from agent.cli import build_parser
    from sim.backends import BACKENDS

    envs = build_parser()._subparsers._group_actions[0].choices["envs"]  # type: ignore[union-attr]
    backend = next(a for a in envs._actions if a.dest == "backend")
    assert tuple(backend.choices) == BACKENDS
