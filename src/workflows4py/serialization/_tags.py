"""Type tags: the stored name of a class, stable across renames through ``@type_tag``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from workflows4py._errors import DefinitionError

__all__ = ["TAG_ATTR", "TYPE_KEY", "tag_of", "type_tag"]

T = TypeVar("T")

TAG_ATTR = "__workflows4py_type_tag__"
TYPE_KEY = "$type"  # the key naming a member of a union of classes inside its object
_MAX_TAG_LENGTH = 200


def type_tag(tag: str) -> Callable[[type[T]], type[T]]:
    """Class decorator giving ``cls`` a stable journal tag (default: ``cls.__qualname__``).

    Subclasses do not inherit an explicit tag.
    """
    if not isinstance(tag, str) or not tag:
        raise DefinitionError(f"a type tag must be a non-empty string, got {tag!r}")
    if len(tag) > _MAX_TAG_LENGTH:
        raise DefinitionError(f"type tag {tag[:40]!r}... is longer than {_MAX_TAG_LENGTH}")
    if any(ch.isspace() for ch in tag):
        raise DefinitionError(f"type tag {tag!r} contains whitespace")

    def apply(cls: type[T]) -> type[T]:
        if not isinstance(cls, type):
            raise DefinitionError(f"@type_tag({tag!r}) must decorate a class, got {cls!r}")
        setattr(cls, TAG_ATTR, tag)
        return cls

    return apply


def tag_of(cls: type) -> str:
    """The tag stored in journals for ``cls``."""
    tag = cls.__dict__.get(TAG_ATTR)
    return tag if isinstance(tag, str) else cls.__qualname__
