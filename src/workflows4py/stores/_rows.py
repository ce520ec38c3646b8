"""What the SQL stores share in reading rows back and searching the registry.

SQLite and PostgreSQL hold values differently (integers or ``timestamptz``, JSON text or
``jsonb``), so each store converts its own values and explains its own bad ones; what a
row means, which criteria a search has, and what becomes of a row that does not decode
are here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, LiteralString, cast, get_args

from workflows4py._errors import DecodeError

from ._protocol import (
    Claim,
    InstanceKey,
    InstanceRecord,
    Page,
    RegistryStatus,
    SearchQuery,
    StoreError,
)

__all__ = [
    "_SORT_COLUMNS",
    "_STATUSES",
    "_claims",
    "_corrupt",
    "_criteria",
    "_key",
    "_keys",
    "_page",
    "_record",
    "_too_new",
]

_STATUSES: frozenset[str] = frozenset(get_args(RegistryStatus))

# The column each SearchQuery.sort orders by (then workflow, instance_id): the only text of
# an ORDER BY or keyset condition that depends on a query, and never the query's own text.
_SORT_COLUMNS: dict[str, LiteralString] = {"updated": "updated_at", "created": "created_at"}

# What a converter raises for a stored value it cannot convert.
_UNCONVERTIBLE = (TypeError, ValueError, OverflowError)

# The criteria of a search that are instants, by SearchQuery field.
_INSTANT_CRITERIA = ("created_from", "created_to", "updated_from", "updated_to", "wakeup_before")


def _too_new(schema: str, current: int, latest: int) -> StoreError:
    """The error for a ``schema`` (named for a message) at a version this library predates."""
    return StoreError(
        f"{schema} is at version {current}, newer than this version of workflows4py knows "
        f"(up to {latest}); upgrade workflows4py"
    )


def _corrupt(
    table: str,
    what: str,
    *,
    path: str,
    key: InstanceKey | None,
    sequence: int | None = None,
    where: str = "",
) -> DecodeError:
    """A DecodeError for a stored ``table`` row that ``what`` (says what is wrong with it)."""
    return DecodeError(
        f"the stored {table} row{where} {what}; the row is corrupt (written by something "
        "other than workflows4py, or damaged)",
        path=path,
        workflow=None if key is None else key.workflow,
        instance_id=None if key is None else key.instance_id,
        sequence=sequence,
    )


def _key(wf: object, iid: object) -> InstanceKey | None:
    """The key of a registry row, or None if its columns are not text."""
    if type(wf) is str and type(iid) is str:
        return InstanceKey(wf, iid)
    return None


def _record(
    row: Sequence[Any],
    instant: Callable[[Any], datetime],
    tags: Callable[[Any], dict[str, str]],
    problem: Callable[[Sequence[Any]], DecodeError],
) -> InstanceRecord:
    """A registry row (workflow, instance_id, status, created_at, updated_at, next_wakeup,
    tags, failures, last_error) as a record.

    ``instant`` and ``tags`` convert the store's values, raising TypeError, ValueError or
    OverflowError for one they cannot; ``problem`` explains a row that does not decode.
    """
    wf, iid, status, created, updated, wakeup, stored_tags, failures, last_error = row
    key = _key(wf, iid)
    if (
        key is not None
        and status.__class__ is str
        and status in _STATUSES
        and failures.__class__ is int
        and (last_error is None or last_error.__class__ is str)
    ):
        try:
            return InstanceRecord(
                key,
                cast(RegistryStatus, status),
                instant(created),
                instant(updated),
                None if wakeup is None else instant(wakeup),
                tags(stored_tags),
                failures,
                last_error,
            )
        except _UNCONVERTIBLE:
            pass
    raise problem(row)


def _counted(query: SearchQuery) -> int | None:
    """How many matches a search counts, at most: one past ``count_limit`` (so that the
    page can tell whether there are more), or None for all."""
    return None if query.count_limit is None else query.count_limit + 1


def _total(query: SearchQuery, counted: int) -> tuple[int, bool]:
    """``Page.total`` and ``Page.exact`` from the matches ``counted`` (up to :func:`_counted`)."""
    cap = query.count_limit
    return (counted, True) if cap is None else (min(counted, cap), counted <= cap)


def _page(
    query: SearchQuery,
    counted: int,
    rows: Iterable[Sequence[Any]],
    record: Callable[[Sequence[Any]], InstanceRecord],
) -> Page:
    """A page of search results, from the matches ``counted`` (up to :func:`_counted`): a
    row that does not decode is reported, the rest returned."""
    total, exact = _total(query, counted)
    page = Page([], total, exact=exact)
    for row in rows:
        try:
            page.records.append(record(row))
        except DecodeError as e:
            page.errors.append(e)
    return page


def _criteria(query: SearchQuery, instant: Callable[[datetime], object]) -> dict[str, Any]:
    """The criteria ``query`` sets, by filter name, with their values (instants converted).

    The names: ``workflow``, ``status`` (a list), the instant fields, ``tags`` (a dict),
    and ``failing`` or ``not_failing`` (True).
    """
    found: dict[str, Any] = {}
    if query.workflow is not None:
        found["workflow"] = query.workflow
    if query.status is not None:
        found["status"] = list(query.status)
    for name in _INSTANT_CRITERIA:
        value = getattr(query, name)
        if value is not None:
            found[name] = instant(value)
    if query.tags:
        found["tags"] = query.tags
    if query.failing is not None:
        found["failing" if query.failing else "not_failing"] = True
    return found


def _keys(
    rows: Iterable[Sequence[Any]], bad: Callable[[Sequence[Any]], None]
) -> list[tuple[InstanceKey, Sequence[Any]]]:
    """The keys of rows that start (workflow, instance_id), each with its row; ``bad`` is
    told of a row whose key is not text (and raises, or lets the others be returned)."""
    found: list[tuple[InstanceKey, Sequence[Any]]] = []
    for row in rows:
        key = _key(row[0], row[1])
        if key is None:
            bad(row)
        else:
            found.append((key, row))
    return found


def _claims(
    rows: Iterable[Sequence[Any]],
    until: datetime,
    wakeup: Callable[[Any], datetime],
    bad: Callable[[Sequence[Any]], None],
) -> list[Claim]:
    """Claimed (workflow, instance_id, next_wakeup) rows as claims lasting ``until``.

    One bad row must not stop a worker from running the others: a key that is not text is
    skipped (``bad`` is told), and ``wakeup`` gives an instant for any stored wakeup (the
    operation that runs the instance then writes a sound one).
    """
    return [Claim(key, wakeup(row[2]), until) for key, row in _keys(rows, bad)]
