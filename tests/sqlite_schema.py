"""Builds SQLite databases of an older schema, for the tests of what a store makes of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workflows4py.stores import SqliteStore


def version_1(path: Path) -> sqlite3.Connection:
    """Creates ``path`` with the first migration's schema only, recorded as applied, and
    returns an open (autocommit) connection to it; the caller closes it."""
    conn = sqlite3.connect(path, isolation_level=None)
    version, description, statements = SqliteStore.MIGRATIONS[0]
    conn.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, description TEXT, at)")
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO migrations VALUES (?, ?, 0)", (version, description))
    return conn
