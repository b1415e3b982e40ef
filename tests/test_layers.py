"""Who may import whom (shared/DESIGN.md, README "Layout"), checked on the import graph."""
from __future__ import annotations

from import_graph import PACKAGES, Graph, import_graph

BELOW_AGENT = {"robot", "sim", "hw_drivers", "skills", "corrections_kb", "policies"}
MAY_IMPORT: dict[str, set[str]] = {
    "robot": set(),  # the leaf: numpy (and its own body's library) only
    "sim": {"robot"},
    "hw_drivers": {"robot"},
    "skills": {"robot"},
    "corrections_kb": {"robot"},
    "policies": {"skills", "corrections_kb", "robot"},
    "agent": BELOW_AGENT,
    "console": BELOW_AGENT | {"agent"},
}
# Edges that break the table by design, each with why. Keep this short; each must still exist.
DEPARTURES: dict[tuple[str, str], str] = {
    ("agent.cli", "console.terminal"): "`corrigo run` (the CLI lives in agent/) starts the terminal console",
}


def violations(graph: Graph) -> list[tuple[str, str]]:
    out = []
    for module, targets in sorted(graph.items()):
        layer = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != layer and other not in MAY_IMPORT[layer] and (module, target) not in DEPARTURES:
                out.append((module, target))
    return out


def test_every_package_has_a_rule() -> None:
    assert set(MAY_IMPORT) == set(PACKAGES)
    assert violations({"robot.types": {"robot.geometry", "sim.arm"}, "policies.x": {"agent.loop", "skills"}}) == [
        ("policies.x", "agent.loop"), ("robot.types", "sim.arm")]


def test_no_module_imports_a_layer_it_may_not() -> None:
    found = violations(import_graph())
    assert not found, "layering violations:\n" + "\n".join(f"  {m} -> {t}" for m, t in found)


def test_the_departures_are_still_needed() -> None:
    graph = import_graph()
    stale = [edge for edge in DEPARTURES if edge[1] not in graph.get(edge[0], set())]
    assert not stale, f"no longer imported, remove from DEPARTURES: {stale}"
