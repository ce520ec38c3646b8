"""The public API is explicit: sorted `__all__` everywhere, nothing missing, nothing extra."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import workflows4py

# The top level, and each layer's package (docs/architecture.md).
PUBLIC_MODULES = [
    "workflows4py",
    "workflows4py.cli",
    "workflows4py.contrib",
    "workflows4py.contrib.otel",
    "workflows4py.definition",
    "workflows4py.engine",
    "workflows4py.examples",
    "workflows4py.render",
    "workflows4py.runtime",
    "workflows4py.serialization",
    "workflows4py.stores",
    "workflows4py.testing",
    "workflows4py.web",
]


def _modules() -> list[ModuleType]:
    names = [
        info.name
        for info in pkgutil.walk_packages(workflows4py.__path__, "workflows4py.")
        if info.name != "workflows4py.__main__"  # importing it runs the command line
        # the examples are programs a user would write, not API: each runs on its own
        and not info.name.startswith("workflows4py.examples.")
    ]
    return [importlib.import_module(n) for n in ["workflows4py", *names]]


def test_the_walk_finds_every_layer_and_its_modules() -> None:
    found = {m.__name__ for m in _modules()}
    assert set(PUBLIC_MODULES) <= found
    assert "workflows4py.stores._sqlite" in found


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
    parts = module.__name__.split(".")[1:]
    assert module.__name__ in PUBLIC_MODULES or any(p.startswith("_") for p in parts)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_names_are_reexported_from_private_modules(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            private = any(p.startswith("_") for p in obj.__module__.split(".")[1:])
            assert private, f"{name} lives in {obj.__module__}"


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


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_a_package_exports_exactly_its_public_names(module_name: str) -> None:
    # compare httpx's test: every public name of the namespace is in __all__, and no more
    module = importlib.import_module(module_name)
    public = {
        n for n in dir(module) if not n.startswith("_") and not inspect.ismodule(getattr(module, n))
    }
    assert public == set(module.__all__) - set(getattr(module, "_LAZY", ()))


@pytest.mark.parametrize(
    "module", [m for m in _modules() if m.__name__ not in PUBLIC_MODULES], ids=lambda m: m.__name__
)
def test_a_private_module_exports_the_classes_and_functions_it_defines(module: ModuleType) -> None:
    defined = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (isinstance(obj, type) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    }
    assert defined <= set(module.__all__), (
        f"not in __all__: {sorted(defined - set(module.__all__))}"
    )
