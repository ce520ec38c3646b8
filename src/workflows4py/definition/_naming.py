"""Human names for steps, signals and errors, derived from Python names."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["error_name", "pretty_name"]

# Words that read as acronyms in step names; words without vowels ("pr", "sql") are caught by rule.
_ACRONYMS = frozenset(
    {
        "id",
        "io",
        "ci",
        "cd",
        "api",
        "url",
        "uri",
        "ui",
        "uuid",
        "kyc",
        "aml",
        "otp",
        "json",
        "xml",
        "vip",
        "faq",
        "iban",
        "eta",
        "ai",
        "os",
        "ok",
    }
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _pretty_word(word: str) -> str:
    lower = word.lower()
    if lower in _ACRONYMS or (len(lower) > 1 and not re.search(r"[aeiouy]", lower)):
        return word.upper()
    if word.isupper() and len(word) > 1:
        return word  # already an acronym in camelCase input, e.g. "createPR"
    return word[:1].upper() + word[1:]


def pretty_name(identifier: str) -> str:
    """Turn ``create_pr`` or ``createPR`` into ``Create PR``."""
    words: list[str] = []
    for chunk in identifier.strip("_").split("_"):
        words.extend(w for w in _CAMEL_BOUNDARY.split(chunk) if w)
    return " ".join(_pretty_word(w) for w in words)


def error_name(error_type: Any) -> str:
    """How a domain error type reads in progress and renderings: its class name split into
    words (``CommitNotFound`` becomes ``Commit Not Found``), as steps and signals are named."""
    return pretty_name(getattr(error_type, "__name__", str(error_type)))
