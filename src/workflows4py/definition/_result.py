"""Domain outcomes as values: a step either succeeds with a value or fails with a domain error.

Domain errors (a rejected review, a commit that does not exist) are part of a workflow's
business logic. They are returned, typed and drawn in diagrams; exceptions are kept for
technical failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Never, TypeVar

__all__ = ["Err", "Ok", "Result"]

_O_co = TypeVar("_O_co", covariant=True)
_E_co = TypeVar("_E_co", covariant=True)


class Result(Generic[_O_co, _E_co]):
    """Either :class:`Ok` with a value or :class:`Err` with a domain error."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Ok(Result[_O_co, Never]):
    """A successful outcome carrying ``value``."""

    value: _O_co


@dataclass(frozen=True, slots=True)
class Err(Result[Never, _E_co]):
    """A domain error carried as a value (not raised)."""

    error: _E_co
