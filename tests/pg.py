"""PostgreSQL for tests: where it is, whether it is up, and a fresh schema per test.

Set ``WORKFLOWS4PY_PG_DSN`` to point the tests at a server (default: a local ``test``
database). When the server cannot be reached the Postgres tests are skipped, unless
``WORKFLOWS4PY_CI=1``: CI must run them, so there they fail instead.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def dsn() -> str:
    """The server the tests use."""
    return os.environ.get("WORKFLOWS4PY_PG_DSN", DEFAULT_DSN)


def _shown(conninfo: str) -> str:
    """``conninfo`` without its password, for messages."""
    masked = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", conninfo)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", masked)


@functools.cache
def _unreachable(conninfo: str) -> str | None:
    """Why the server cannot be used, or None if it can (checked once per run)."""
    try:
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return str(e).strip()
    return None


def require_postgres() -> str:
    """The DSN of a reachable server; else skip the test (fail it when WORKFLOWS4PY_CI=1)."""
    conninfo = dsn()
    why = _unreachable(conninfo)
    if why is not None:
        message = (
            f"PostgreSQL not reachable at {_shown(conninfo)}; start it or set WORKFLOWS4PY_PG_DSN"
        )
        if os.environ.get("WORKFLOWS4PY_CI") == "1":
            pytest.fail(f"{message} ({why})", pytrace=False)
        pytest.skip(message)
    return conninfo


@contextmanager
def fresh_schema(conninfo: str) -> Iterator[str]:
    """A schema name nobody uses yet; the schema is dropped (if created) on exit.

    The name needs quoting (capitals, a space, a double quote), so every query of the store
    is checked to quote it.
    """
    name = f'W4p test "{uuid.uuid4().hex[:12]}"'
    try:
        yield name
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
