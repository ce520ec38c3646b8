"""The public API is explicit: sorted `__all__` everywhere, nothing missing, nothing extra."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import workflows4py

PUBLIC_MODULES = ["workflows4py", "workflows4py.testing"]


def _modules() -> list[ModuleType]:
    names = [
        f"workflows4py.{info.name}"
        for info in pkgutil.iter_modules(workflows4py.__path__)
        if info.name != "__main__"  # importing it runs the command line
    ]
    return [importlib.import_module(n) for n in ["workflows4py", *names]]


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_every_module_has_a_sorted_complete_all(module: ModuleType) -> None:
    exported = module.__all__

    # isort style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions
    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[:1].isupper() else 2, n)

    assert list(exported) == sorted(exported, key=key)
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_private_or_public_naming(module: ModuleType) -> None:
    short = module.__name__.rsplit(".", 1)[-1]
    assert module.__name__ in PUBLIC_MODULES or short.startswith("_")


def test_public_names_are_reexported_from_private_modules() -> None:
    for name in workflows4py.__all__:
        obj = getattr(workflows4py, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert obj.__module__.startswith("workflows4py._"), f"{name} lives in {obj.__module__}"


def test_every_public_class_and_function_is_documented() -> None:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) or inspect.isfunction(obj):
                assert obj.__doc__, f"{module_name}.{name} has no docstring"


def test_exceptions_form_one_tree() -> None:
    errors = [
        getattr(workflows4py, n)
        for n in workflows4py.__all__
        if isinstance(getattr(workflows4py, n), type)
        and issubclass(getattr(workflows4py, n), Exception)
    ]
    assert len(errors) >= 10
    assert all(issubclass(e, workflows4py.WorkflowError) for e in errors)
