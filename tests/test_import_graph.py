"""No module of corrigo imports in a circle, lazy and type-checking imports included."""
from __future__ import annotations

import textwrap
from pathlib import Path

from import_graph import cycles, import_graph


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_graph_follows_every_kind_of_import(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "a/__init__.py": "from a import sub\n",
        "a/sub.py": "from . import leaf\nimport numpy\n",
        "a/leaf.py": "def f():\n    from a.sub import g\n",  # lazy: still an edge
        "a/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from b.mod import T\n",
        "b/__init__.py": "",
        "b/mod.py": "import a.typed\nfrom ..a import leaf\n",
    })
    g = import_graph(tmp_path, ("a", "b"))
    assert g["a"] == {"a.sub"} and g["a.sub"] == {"a", "a.leaf"} and g["a.leaf"] == {"a.sub"}
    assert g["a.typed"] == {"b.mod"} and g["b.mod"] == {"a.typed", "a", "a.leaf"} and g["b"] == set()
    assert cycles(g) == [["a", "a.leaf", "a.sub"], ["a.typed", "b.mod"]]


def test_no_module_imports_in_a_circle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join("  " + " ⇄ ".join(c) for c in found)
