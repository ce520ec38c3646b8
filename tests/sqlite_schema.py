"""Builds SQLite databases of an older schema, for the tests of what a store makes of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workflows4py.stores import SqliteStore


def at_version(path: Path, version: int) -> sqlite3.Connection:
    """Creates ``path`` with the schema of the migrations up to ``version`` only, recorded as
    applied, and returns an open (autocommit) connection to it; the caller closes it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, description TEXT, at)")
    for number, description, statements in SqliteStore.MIGRATIONS:
        if number <= version:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?, 0)", (number, description))
    return conn


def version_1(path: Path) -> sqlite3.Connection:
    """:func:`at_version` 1: the first migration's schema only."""
    return at_version(path, 1)
