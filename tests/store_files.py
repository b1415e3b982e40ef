"""Looking at and damaging knowledge-store files, for the corruption and fault tests."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def root_pages(p: Path) -> dict[str, int]:
    conn = sqlite3.connect(p)
    try:
        return {name: page for name, page in conn.execute("SELECT name, rootpage FROM sqlite_master WHERE rootpage > 0")}
    finally:
        conn.close()


def integrity(p: Path) -> str:
    """SQLite's own verdict, on a copy (so the check itself cannot touch the file)."""
    copy = p.with_name(p.name + ".copy")
    copy.write_bytes(p.read_bytes())
    conn = sqlite3.connect(copy)
    try:
        return " ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
    except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
        return f"error: {e}"
    finally:
        conn.close()
        for x in copy.parent.glob(copy.name + "*"):
            x.unlink()


def flip(p: Path, pos: int, mask: int = 0xFF) -> None:
    b = bytearray(p.read_bytes())
    b[pos] ^= mask
    p.write_bytes(bytes(b))


def page_size(p: Path) -> int:
    conn = sqlite3.connect(p)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
